"""Client overhead: CPU seconds per 1,000 requests and requests/s against an unthrottled server.

    python benchmarks/bench_overhead.py [--quick] [--repeats N]
    python benchmarks/bench_overhead.py --hooks [--quick] [--repeats N]

The simulator (its own process, no limit, no faults) serves N campaigns; each client runs
in its own process, warms up on 256 requests, then fetches every campaign once with
concurrency 64. Figures are medians over the repeats. The headline is the ratio of
sendkit_async's CPU per request to raw aiohttp's (target <= 1.25).

``--hooks`` instead runs sendkit_async with each kind of hooks of ``_clients.HOOKS``
(none, an empty ``Hooks()``, no-op hooks, OpenTelemetry set up but not installed,
``OpenTelemetryHooks`` on the API alone and on the SDK), beside raw aiohttp, interleaved.
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


HOOK_KINDS = ("none", "empty", "otel-off", "noop", "otel-api", "otel-sdk")


def run_hooks(*, quick: bool = False, repeats: int = 3) -> list[Section]:
    """CPU per request of sendkit_async with hooks of each kind against no hooks."""
    n = 1_000 if quick else 20_000
    variants = ["aiohttp", *HOOK_KINDS]
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    with simulator("--campaigns", str(n)) as server:
        ids = server.ids()
        with ids_file(ids) as path:
            run_client("aiohttp", server.url, ids=path, concurrency=CONCURRENCY)
            for _ in range(repeats):
                for variant in variants:
                    client, hooks = (
                        ("aiohttp", None) if variant == "aiohttp" else ("sendkit_async", variant)
                    )
                    report = run_client(
                        client,
                        server.url,
                        ids=path,
                        concurrency=CONCURRENCY,
                        warmup=256,
                        hooks=hooks,
                    )
                    if report["failed"]:
                        raise RuntimeError(f"{variant}: {report['errors']}")
                    runs[variant].append(report)
    floor = median_of(runs["aiohttp"], "cpu_ms_per_1000")
    base = median_of(runs["none"], "cpu_ms_per_1000")
    rows = []
    for variant in variants:
        cpus = sorted(r["cpu_ms_per_1000"] / 1000 for r in runs[variant])
        cpu = median_of(runs[variant], "cpu_ms_per_1000")
        rows.append(
            [
                "aiohttp" if variant == "aiohttp" else f"sendkit_async, hooks={variant}",
                cpu / 1000,
                f"{cpus[0]:.3f}-{cpus[-1]:.3f}",
                cpu / base,
                cpu / floor,
                median_of(runs[variant], "rps"),
            ]
        )
    return [
        {
            "title": "Overhead with hooks and OpenTelemetry",
            "about": (
                f"{n:,} GETs of campaign analytics, concurrency {CONCURRENCY}, as in the overhead "
                "benchmark; every variant in its own process, interleaved per repeat. Client CPU "
                f"is `time.process_time()` around the run. Median (and range) of {repeats}."
            ),
            "columns": [
                "client",
                "CPU s / 1,000 req",
                "range",
                "vs no hooks",
                "vs aiohttp",
                "requests/s",
            ],
            "rows": rows,
            "notes": [
                "none / empty / otel-off run the same pipeline code (an empty `Hooks()` is "
                "dropped at construction; otel-off imports and sets up the SDK but gives the "
                "client no hooks): their spread is the noise of the machine."
            ],
            "raw": runs,
        }
    ]


if __name__ == "__main__":
    import sys

    if "--hooks" in sys.argv:
        sys.argv.remove("--hooks")
        standalone(run_hooks)
    else:
        standalone(run)
