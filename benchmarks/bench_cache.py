"""Coalescing and the cache: upstream requests (the simulator's own counter) and latency.

    python benchmarks/bench_cache.py [--quick] [--repeats N]

Two workloads against the simulator (its own process, 20 ms added latency, no limit):

- 50 concurrent identical ``client.analytics.campaign(id)`` calls;
- 2,000 calls at concurrency 100 spread over 20 hot campaigns (call i asks for campaign
  i mod 20), with a ``MemoryCache(ttl=30)``.

Each runs in a client process of its own, without coalescing or cache (``coalesce=False``),
with coalescing only (the default), and with coalescing and the cache. Upstream requests
are read from the simulator's ``/_simulator/stats`` (reset before each run).

A third table is the CPU price of coalescing for single calls that share nothing:
6,000 ``campaign(id)`` calls over distinct ids at concurrency 32 against the fixed-body
responder, ``coalesce=False`` against the default (a task per call).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from _common import ROOT, Section, Server, child_env, median_of, simulator, standalone

LATENCY_MS = 20
MODES = ("neither", "coalescing", "coalescing + cache")


def run(*, quick: bool = False, repeats: int = 3) -> list[Section]:
    calls, hot, concurrency = (400, 20, 100) if quick else (2_000, 20, 100)
    with simulator("--campaigns", "100", "--latency-ms", str(LATENCY_MS)) as server:
        ids = server.ids()
        sections = []
        for title, workload in (
            ("50 concurrent identical calls", {"calls": 50, "hot": 1, "concurrency": 50}),
            (
                f"{calls:,} calls at concurrency {concurrency} over {hot} hot campaigns",
                {"calls": calls, "hot": hot, "concurrency": concurrency},
            ),
        ):
            rows = []
            for mode in MODES:
                runs = []
                for _ in range(repeats):
                    server.reset()
                    report = worker(server.url, ids[: workload["hot"]], mode, workload)
                    report["upstream"] = server.stats()["requests_total"]
                    runs.append(report)
                rows.append(
                    [
                        mode,
                        workload["calls"],
                        median_of(runs, "upstream"),
                        median_of(runs, "cache_hits"),
                        median_of(runs, "coalesced"),
                        median_of(runs, "p50_ms"),
                        median_of(runs, "p99_ms"),
                        median_of(runs, "wall"),
                    ]
                )
            sections.append(
                {
                    "title": f"Coalescing and cache: {title}",
                    "about": (
                        f"Simulator in its own process, {LATENCY_MS} ms latency, no limit; "
                        f"each mode in its own client process; median of {repeats}. "
                        "`upstream` is the simulator's request counter."
                    ),
                    "columns": [
                        "mode",
                        "calls",
                        "upstream",
                        "cache hits",
                        "coalesced",
                        "p50 ms",
                        "p99 ms",
                        "wall s",
                    ],
                    "rows": rows,
                    "targets": [
                        {
                            "what": "upstream requests with coalescing + cache",
                            "value": rows[-1][2],
                            "target": f"<= {workload['hot']}",
                            "met": rows[-1][2] <= workload["hot"],
                        }
                    ],
                    "notes": [],
                }
            )
    sections.append(single_call_cpu(quick=quick, repeats=repeats))
    return sections


def single_call_cpu(*, quick: bool, repeats: int) -> Section:
    """CPU per single call that shares nothing, coalescing off and on (interleaved runs)."""
    calls = 1_000 if quick else 6_000
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    with Server("echo") as server:
        ids = [f"{i:024x}" for i in range(calls)]
        for _ in range(repeats):
            for mode in runs:
                spec = {"calls": calls, "hot": calls, "concurrency": 32, "cpu": True}
                runs[mode].append(worker(server.url, ids, f"cpu-{mode}", spec))
    rows = [[mode, calls, median_of(r, "cpu_us")] for mode, r in runs.items()]
    return {
        "title": "Coalescing: CPU per single call that shares nothing",
        "about": (
            f"{calls:,} `campaign(id)` calls over distinct ids, concurrency 32, against "
            "the fixed-body responder in its own process; client CPU "
            f"(`time.process_time()`) per call after a 300-call warm-up; median of {repeats}."
        ),
        "columns": ["coalescing", "calls", "CPU us / call"],
        "rows": rows,
        "targets": [],
        "notes": [],
    }


def worker(url: str, ids: list[str], mode: str, workload: dict[str, int]) -> dict[str, Any]:
    """One mode of one workload in a client process of its own; its JSON report."""
    spec = json.dumps({"url": url, "ids": ids, "mode": mode, **workload})
    done = subprocess.run(  # noqa: S603 - this script, fixed arguments
        [sys.executable, __file__, "--worker"],
        input=spec,  # thousands of ids: too long for one argument
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {mode} failed:\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


async def _work(spec: dict[str, Any]) -> dict[str, Any]:
    import asyncio
    import statistics
    import time

    from sendkit_async import AsyncSendKit, MemoryCache, RateLimiter

    mode = spec["mode"]
    cache = MemoryCache(maxsize=1024, ttl=30) if mode.endswith("cache") else None
    client = AsyncSendKit(
        api_key="sk_bench_key",
        base_url=spec["url"],
        coalesce=mode not in ("neither", "cpu-off"),
        cache=cache,
        # The CPU runs measure the client, not the limiter's slow start.
        rate_limiter=RateLimiter(max_concurrency=100, adaptive=not spec.get("cpu")),
    )
    ids, todo = spec["ids"], list(range(spec["calls"]))
    latencies: list[float] = []

    async def one_worker() -> None:
        while todo:
            i = todo.pop()
            began = time.perf_counter()
            await client.analytics.campaign(ids[i % len(ids)])
            latencies.append(time.perf_counter() - began)

    async with client:
        if spec.get("cpu"):
            await asyncio.gather(*(client.analytics.campaign(i) for i in ids[-300:]))
            cpu = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(one_worker() for _ in range(spec["concurrency"])))
        wall = time.perf_counter() - started
        if spec.get("cpu"):
            return {"cpu_us": 1e6 * (time.process_time() - cpu) / spec["calls"]}
        stats = client.stats
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "wall": wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * q[98],
        "cache_hits": stats.cache_hits,
        "coalesced": stats.coalesced,
        "requests": stats.requests,
    }


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        import asyncio

        print(json.dumps(asyncio.run(_work(json.loads(sys.stdin.read())))))
    else:
        standalone(run)
