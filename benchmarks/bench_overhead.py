"""Client overhead: CPU seconds per 1,000 requests and requests/s against an unthrottled server.

    python benchmarks/bench_overhead.py [--quick] [--repeats N]

The simulator (its own process, no limit, no faults) serves N campaigns; each client runs
in its own process, warms up on 256 requests, then fetches every campaign once with
concurrency 64. Figures are medians over the repeats. The headline is the ratio of
sendkit_async's CPU per request to raw aiohttp's (target <= 1.25).
"""

from __future__ import annotations

from typing import Any

from _common import CLIENTS, Section, ids_file, median_of, run_client, simulator, standalone

CONCURRENCY = 64
TARGET_RATIO = 1.25


def run(*, quick: bool = False, repeats: int = 3) -> list[Section]:
    n = 1_000 if quick else 20_000
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CLIENTS}
    with simulator("--campaigns", str(n)) as server:
        ids = server.ids()
        with ids_file(ids) as path:
            # Untimed pass so every body is rendered and cached by the simulator first.
            run_client("aiohttp", server.url, ids=path, concurrency=CONCURRENCY)
            for _ in range(repeats):
                for client in CLIENTS:  # interleaved, so drift hits every client alike
                    report = run_client(
                        client, server.url, ids=path, concurrency=CONCURRENCY, warmup=256
                    )
                    if report["failed"]:
                        raise RuntimeError(f"{client}: {report['errors']}")
                    runs[client].append(report)
    floor = median_of(runs["aiohttp"], "cpu_ms_per_1000")
    rows = []
    for client in CLIENTS:
        cpu = median_of(runs[client], "cpu_ms_per_1000")
        rows.append(
            [
                client,
                n,
                cpu / 1000,
                cpu / floor,
                median_of(runs[client], "rps"),
                median_of(runs[client], "wall"),
            ]
        )
    ratio = median_of(runs["sendkit_async"], "cpu_ms_per_1000") / floor
    return [
        {
            "title": "Overhead (unthrottled server)",
            "about": (
                f"{n:,} GETs of campaign analytics, concurrency {CONCURRENCY}, simulator in its "
                "own process with no limit or faults; client CPU is `time.process_time()` of "
                f"the client's own process around the run. Median of {repeats}."
            ),
            "columns": [
                "client",
                "requests",
                "CPU s / 1,000 req",
                "CPU vs aiohttp",
                "requests/s",
                "wall s",
            ],
            "rows": rows,
            "targets": [
                {
                    "what": "sendkit_async CPU / raw aiohttp CPU",
                    "value": ratio,
                    "target": f"<= {TARGET_RATIO}",
                    "met": ratio <= TARGET_RATIO,
                }
            ],
            "notes": [
                "requests/s is bounded by the client on this machine: the server needs about "
                "0.09 ms of CPU per request and has a core of its own."
            ],
            "raw": runs,
        }
    ]


if __name__ == "__main__":
    standalone(run)
