"""Client overhead: CPU seconds per 1,000 requests and requests/s against an unthrottled server.

    python benchmarks/bench_overhead.py [--quick] [--repeats N]

The simulator (its own process, no limit, no faults) serves N campaigns; each client runs
in its own process, warms up on 256 requests, then fetches every campaign once with
concurrency 64. Figures are medians over the repeats. The headline is the ratio of
sendkit_async's CPU per request to raw aiohttp's (target <= 1.25).

The blocking client ``SendKit`` runs the same workload twice: ``sendkit_sync`` makes the
same ``gather_campaigns`` call from the main thread, ``sendkit_sync x8 threads`` has 8
threads each calling ``client.analytics.campaign(id)`` one id after another (what a
threaded script does). Each is compared with sendkit_async's CPU per request (target <= 1.3).
``sendkit_async x8 tasks`` (8 tasks, each awaiting one id after another) is the async twin
of the threaded row: the difference between those two is the cost of the thread hand-off.
"""

from __future__ import annotations

from typing import Any

from _common import CLIENTS, Section, ids_file, median_of, run_client, simulator, standalone

CONCURRENCY = 64
TARGET_RATIO = 1.25
SYNC_TARGET = 1.3
SYNC_THREADS = 8
# label -> (client, extra options of _clients.py)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    **{c: (c, {}) for c in CLIENTS},
    f"sendkit_async x{SYNC_THREADS} tasks": ("sendkit_async", {"tasks": SYNC_THREADS}),
    "sendkit_sync": ("sendkit_sync", {}),
    f"sendkit_sync x{SYNC_THREADS} threads": ("sendkit_sync", {"threads": SYNC_THREADS}),
}
SYNC_ROWS = [label for label in VARIANTS if label.startswith("sendkit_sync")]


def run(*, quick: bool = False, repeats: int = 3) -> list[Section]:
    n = 1_000 if quick else 20_000
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in VARIANTS}
    with simulator("--campaigns", str(n)) as server:
        ids = server.ids()
        with ids_file(ids) as path:
            # Untimed pass so every body is rendered and cached by the simulator first.
            run_client("aiohttp", server.url, ids=path, concurrency=CONCURRENCY)
            for _ in range(repeats):
                for label, (client, extra) in VARIANTS.items():  # interleaved: drift hits all
                    report = run_client(
                        client, server.url, ids=path, concurrency=CONCURRENCY, warmup=256, **extra
                    )
                    if report["failed"]:
                        raise RuntimeError(f"{label}: {report['errors']}")
                    runs[label].append(report)
    floor = median_of(runs["aiohttp"], "cpu_ms_per_1000")
    rows = []
    async_cpu = median_of(runs["sendkit_async"], "cpu_ms_per_1000")
    for label in VARIANTS:
        cpu = median_of(runs[label], "cpu_ms_per_1000")
        rows.append(
            [
                label,
                n,
                cpu / 1000,
                cpu / floor,
                cpu / async_cpu,
                median_of(runs[label], "rps"),
                median_of(runs[label], "wall"),
            ]
        )
    ratio = async_cpu / floor
    sync_targets = []
    for label in SYNC_ROWS:
        sync_ratio = median_of(runs[label], "cpu_ms_per_1000") / async_cpu
        sync_targets.append(
            {
                "what": f"{label} CPU / sendkit_async CPU",
                "value": sync_ratio,
                "target": f"<= {SYNC_TARGET}",
                "met": sync_ratio <= SYNC_TARGET,
            }
        )
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
                "CPU vs sendkit_async",
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
                },
                *sync_targets,
            ],
            "notes": [
                "requests/s is bounded by the client on this machine: the server needs about "
                "0.09 ms of CPU per request and has a core of its own.",
                f"sendkit_sync x{SYNC_THREADS} threads has at most {SYNC_THREADS} requests in "
                f"flight (one per thread), the other rows {CONCURRENCY}; CPU is the whole "
                "process's, the client's event-loop thread included. "
                f"sendkit_async x{SYNC_THREADS} tasks is its async twin (8 tasks awaiting one "
                "id after another): the gap between those two rows is the thread hand-off.",
            ],
            "raw": runs,
        }
    ]


if __name__ == "__main__":
    standalone(run)
