"""Bulk fetch through server faults: 5 % 5xx, 1 % connection resets, 5 ms + 0-10 ms latency.

    python benchmarks/bench_faults.py [--quick] [--repeats N]

Two simulators in their own processes with the same latency (5 ms plus uniform 0-10 ms
jitter): one fault-free, one answering 5 % of requests with 500/502/503 (evenly, half of
them as an HTML page, no Retry-After) and resetting 1 % of connections. Each client (own
process, concurrency 64) fetches N campaigns from both. Reported: campaigns fetched (must
be 100 %), wall time against the same client's fault-free run, and requests the server saw
per campaign.
"""

from __future__ import annotations

from typing import Any

from _common import Section, ids_file, median_of, run_client, simulator, standalone

CLIENTS = ("sendkit_async", "aiohttp+tenacity")
CONCURRENCY = 64
LATENCY = ("--latency-ms", "5", "--jitter-ms", "10")
FAULTS = ("--fault-rate", "0.05", "--reset-rate", "0.01")


def measure(server: Any, client: str, path: Any, n: int) -> dict[str, Any]:
    server.reset()
    report = run_client(client, server.url, ids=path, concurrency=CONCURRENCY, warmup=0)
    stats = server.stats()
    report["server_requests"] = int(stats["requests_total"])
    report["per_campaign"] = report["server_requests"] / n
    report["completed"] = report["ok"] / n
    report["resets"] = int(stats["resets"])
    report["faults"] = sum(v for k, v in stats["by_status"].items() if int(k) >= 500)
    return report


def run(*, quick: bool = False, repeats: int = 3) -> list[Section]:
    n = 300 if quick else 4000
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for label, options in (("fault-free", LATENCY), ("faults", LATENCY + FAULTS)):
        with simulator("--campaigns", str(n), *options) as server:
            ids = server.ids()
            with ids_file(ids) as path:
                run_client("aiohttp", server.url, ids=path)  # render and cache every body
                for _ in range(repeats):
                    for client in CLIENTS:
                        runs.setdefault((label, client), []).append(
                            measure(server, client, path, n)
                        )
    rows, targets = [], []
    for client in CLIENTS:
        base = median_of(runs[("fault-free", client)], "wall")
        for label in ("fault-free", "faults"):
            r = runs[(label, client)]
            rows.append(
                [
                    client,
                    label,
                    f"{median_of(r, 'completed'):.2%}",
                    median_of(r, "wall"),
                    median_of(r, "wall") / base,
                    median_of(r, "per_campaign"),
                    f"{median_of(r, 'faults'):.0f} / {median_of(r, 'resets'):.0f}",
                ]
            )
        worst = min(run["completed"] for run in runs[("faults", client)])
        targets.append(
            {
                "what": f"{client}: campaigns fetched despite faults (worst run)",
                "value": f"{worst:.2%}",
                "target": "100 %",
                "met": worst == 1.0,
            }
        )
    return [
        {
            "title": "Under faults (5 % 5xx, 1 % resets, 5 ms + 0-10 ms latency)",
            "about": (
                f"{n:,} campaigns, concurrency {CONCURRENCY}; wall time relative to the same "
                f"client against a fault-free simulator with the same latency. Median of "
                f"{repeats}."
            ),
            "columns": [
                "client",
                "server",
                "fetched",
                "wall s",
                "wall vs fault-free",
                "requests per campaign",
                "5xx / resets",
            ],
            "rows": rows,
            "targets": targets,
            "notes": [
                "Faults carry no Retry-After, so both clients back off on their own "
                "(sendkit_async: equal jitter from 25 ms, doubling to 1 s; "
                "the hand-written client: tenacity "
                "`wait_random_exponential(multiplier=0.5, max=8)`)."
            ],
            "raw": {f"{k[0]}/{k[1]}": v for k, v in runs.items()},
        }
    ]


if __name__ == "__main__":
    standalone(run)
