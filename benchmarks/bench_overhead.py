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
