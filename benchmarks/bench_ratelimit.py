"""Bulk fetch under a server rate limit, for each header convention the simulator speaks.

    python benchmarks/bench_ratelimit.py [--quick] [--repeats N]

The simulator (own process) allows R requests/s per key with a bucket of B; each client
(own process, concurrency 64, no warm-up) fetches N campaigns. Per mode and client:
wall / (N / R) (1.0 = as fast as the limit allows), requests the server saw per campaign
fetched, the share of 429s among them (server side, ``/_simulator/stats``) and how many
campaigns were fetched at all. Also saves the server's timeline of the ``none`` and
``x-ratelimit`` runs and draws ``results/ratelimit_timeline.png``.
"""

from __future__ import annotations

import json
from typing import Any

from _common import (
    CLIENTS,
    RESULTS,
    Section,
    ids_file,
    median_of,
    run_client,
    simulator,
    standalone,
)
from _plot import draw

MODES = ("x-ratelimit", "ietf", "retry-after-only", "none")
QUICK_MODES = ("x-ratelimit", "none")
PICTURE_MODES = ("none", "x-ratelimit")
PICTURE_CLIENTS = ("sendkit_async", "aiohttp+tenacity")
CONCURRENCY = 64
BURST = 20
# (wall / ideal, share of 429s) goals for sendkit_async: with the limit announced, and with
# nothing announced. Retry-After alone announces no limit, and as every request not yet sent
# must wait for it, the first 429 (the only way to learn the limit) costs a whole second:
# at best (N - B) / R + 1 = 5.9 s, 1.18 x the ideal, so it has the "nothing" goals.
GOALS = {"headers": (1.10, 0.02), "nothing": (1.25, 0.05)}
GOAL_OF_MODE = {
    "x-ratelimit": "headers",
    "ietf": "headers",
    "retry-after-only": "nothing",
    "none": "nothing",
}


def measure(
    server: Any, client: str, path: Any, n: int, rate: float
) -> tuple[dict[str, Any], list[tuple[float, int]]]:
    server.reset()
    report = run_client(client, server.url, ids=path, concurrency=CONCURRENCY)
    stats = server.stats()
    by_status = {int(k): int(v) for k, v in stats["by_status"].items()}
    total = int(stats["requests_total"])
    report["server_requests"] = total
    report["server_429"] = by_status.get(429, 0)
    report["share_429"] = by_status.get(429, 0) / total if total else 0.0
    report["per_campaign"] = total / report["ok"] if report["ok"] else float("inf")
    report["wall_ratio"] = report["wall"] / (n / rate)
    report["completed"] = report["ok"] / n
    return report, server.timeline()


def run(*, quick: bool = False, repeats: int = 3) -> list[Section]:
    rate, n = (100.0, 200) if quick else (200.0, 1000)
    rows: list[list[Any]] = []
    targets: list[dict[str, Any]] = []
    panels: list[dict[str, Any]] = []
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for mode in QUICK_MODES if quick else MODES:
        options = ["--campaigns", str(n), "--rate-limit", str(rate), "--burst", str(BURST)]
        with simulator(*options, "--rate-limit-headers", mode) as server:
            ids = server.ids()
            runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CLIENTS}
            with ids_file(ids) as path:
                for _ in range(repeats):
                    for client in CLIENTS:
                        report, timeline = measure(server, client, path, n, rate)
                        runs[client].append(report)
                        if mode in PICTURE_MODES and client in PICTURE_CLIENTS:
                            panel = {"mode": mode, "client": client, "timeline": timeline}
                            panel["label"] = (
                                f"wall {report['wall']:.1f} s (ideal {n / rate:.1f} s), "
                                f"{report['share_429']:.0%} 429s, "
                                f"{report['completed']:.0%} fetched"
                            )
                            last = [p for p in panels if (p["mode"], p["client"]) == (mode, client)]
                            for old in last:
                                panels.remove(old)
                            panels.append(panel)  # keep the last repeat's run
        raw[mode] = runs
        for client in CLIENTS:
            r = runs[client]
            rows.append(
                [
                    mode,
                    client,
                    median_of(r, "wall_ratio"),
                    median_of(r, "per_campaign"),
                    f"{median_of(r, 'share_429'):.1%}",
                    f"{median_of(r, 'completed'):.1%}",
                    median_of(r, "wall"),
                ]
            )
        max_ratio, max_share = GOALS[GOAL_OF_MODE[mode]]
        ratio = median_of(runs["sendkit_async"], "wall_ratio")
        share = median_of(runs["sendkit_async"], "share_429")
        done = median_of(runs["sendkit_async"], "completed")
        targets.append(
            {
                "what": f"sendkit_async, `{mode}`: wall / ideal",
                "value": ratio,
                "target": f"<= {max_ratio}",
                "met": ratio <= max_ratio and done == 1.0,
            }
        )
        targets.append(
            {
                "what": f"sendkit_async, `{mode}`: share of 429s",
                "value": f"{share:.1%}",
                "target": f"<= {max_share:.0%}",
                "met": share <= max_share,
            }
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    # A smoke run never replaces the picture of a full run.
    source = RESULTS / ("ratelimit_timeline_quick.json" if quick else "ratelimit_timeline.json")
    source.write_text(json.dumps({"rate": rate, "burst": BURST, "n": n, "panels": panels}))
    message = draw(panels, rate, source.with_suffix(".png"))
    return [
        {
            "title": f"Under a rate limit ({rate:g} requests/s, burst {BURST})",
            "about": (
                f"{n:,} campaigns, concurrency {CONCURRENCY}; the ideal wall time is N / R = "
                f"{n / rate:g} s. Requests and 429s are counted by the simulator. The raw "
                f"aiohttp client never retries, so its 429s are lost campaigns. Median of "
                f"{repeats}; a target counts as met only with every campaign fetched."
            ),
            "columns": [
                "server headers",
                "client",
                "wall / ideal",
                "requests per campaign",
                "429s",
                "fetched",
                "wall s",
            ],
            "rows": rows,
            "targets": targets,
            "notes": [message],
            "raw": raw,
        }
    ]


if __name__ == "__main__":
    standalone(run)
