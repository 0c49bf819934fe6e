"""Interactive call latency while a bulk run saturates the rate limit (issue #16, figure 1).

    python benchmarks/bench_priority.py [--quick] [--no-redis]

The simulator (own process) allows R requests/s. A ``gather_campaigns`` of N ids
saturates it; meanwhile one ``analytics.campaign(id)`` every 0.5 s is timed, from one
second into the run until it ends. Two ways to share the limit:

- one client: the bulk run and the single calls on the same ``AsyncSendKit``;
- two processes: the bulk run in a worker process, the single calls in this one, both
  through one ``RedisRateLimiter`` key (a throwaway ``redis-server`` on loopback).

Each side by side with today's behaviour: every call queued as ``"background"`` (one
lane, first come first served in process; in Redis, whoever asks for the token first).
Goals (issue #16): p50 <= one token interval + RTT, p99 <= 3 token intervals + RTT, with
RTT the p50 of 5 calls on the idle server. Sizes: 5,000 ids at 100 requests/s (50 s),
600 at 10 requests/s (a 5,000-id run would take 500 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, from anywhere

from _common import ROOT, Section, child_env, markdown, simulator

sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed one

from sendkit_async import AsyncSendKit, Priority, RetryPolicy

KEY = "sk_bench_priority_key"
PERIOD = 0.5  # seconds between two interactive calls
SIZES = {100.0: 5000, 10.0: 600}
QUICK_SIZES = {100.0: 300, 10.0: 40}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def idle_rtt(base: str, ids: list[str]) -> float:
    async with AsyncSendKit(KEY, base_url=base) as client:
        times = []
        for campaign_id in ids[:5]:  # fewer than the server's burst: no rate-limit wait
            start = time.perf_counter()
            await client.analytics.campaign(campaign_id)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


async def interactive_loop(
    client: AsyncSendKit, ids: list[str], done: asyncio.Event
) -> list[float]:
    """Time one call every PERIOD seconds until ``done``."""
    latencies: list[float] = []
    k = 0
    await asyncio.sleep(1.0)  # the bulk run saturates the limit by then
    while not done.is_set():
        start = time.perf_counter()
        await client.analytics.campaign(ids[(k * 7919) % len(ids)])
        latencies.append(time.perf_counter() - start)
        k += 1
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), max(0.0, PERIOD - latencies[-1]))
    return latencies


async def one_client(base: str, ids: list[str], priority: Priority) -> dict[str, Any]:
    """Bulk and single calls on one client; single calls queue as ``priority``."""
    policy = RetryPolicy(max_retries=8)
    async with AsyncSendKit(KEY, base_url=base, retry=policy) as client:
        single = client.with_options(priority=priority)
        await single.analytics.campaign(ids[0])  # warm, as in two_processes
        done = asyncio.Event()
        start = time.perf_counter()
        probe = asyncio.create_task(interactive_loop(single, ids, done))
        results = await client.gather_campaigns(ids, return_exceptions=True)
        wall = time.perf_counter() - start
        done.set()
        latencies = await probe
    ok = sum(1 for r in results if not isinstance(r, Exception))
    return {"wall": wall, "ok": ok, "latencies": latencies}


async def redis_bulk(base: str, redis_url: str, prefix: str, ids: list[str]) -> dict[str, Any]:
    """The worker process: a bulk run through the shared budget."""
    from sendkit_async.redis_limiter import RedisRateLimiter

    async with (
        RedisRateLimiter.from_url(redis_url, api_key=KEY, base_url=base, prefix=prefix) as limiter,
        AsyncSendKit(
            KEY, base_url=base, rate_limiter=limiter, retry=RetryPolicy(max_retries=8)
        ) as client,
    ):
        start = time.perf_counter()
        results = await client.gather_campaigns(ids, return_exceptions=True)
        wall = time.perf_counter() - start
    return {"wall": wall, "ok": sum(1 for r in results if not isinstance(r, Exception))}


async def two_processes(
    base: str, redis_url: str, ids: list[str], priority: Priority, prefix: str
) -> dict[str, Any]:
    """Bulk in a worker process, single calls here, one Redis budget."""
    from sendkit_async.redis_limiter import RedisRateLimiter

    async with (
        RedisRateLimiter.from_url(redis_url, api_key=KEY, base_url=base, prefix=prefix) as limiter,
        AsyncSendKit(KEY, base_url=base, rate_limiter=limiter, priority=priority) as client,
    ):
        await client.analytics.campaign(ids[0])  # warm: Redis connection, scripts, probe
        return await _with_worker(client, base, redis_url, ids, prefix)


async def _with_worker(
    client: AsyncSendKit, base: str, redis_url: str, ids: list[str], prefix: str
) -> dict[str, Any]:
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--bulk-worker",
        cwd=ROOT,
        env=child_env(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    job = json.dumps({"base": base, "redis": redis_url, "prefix": prefix, "ids": ids})
    try:
        done = asyncio.Event()
        probe = asyncio.create_task(interactive_loop(client, ids, done))
        out, _ = await worker.communicate(job.encode())
        done.set()
        latencies = await probe
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    report: dict[str, Any] = json.loads(out)
    report["latencies"] = latencies
    return report


def row(setup: str, behaviour: str, rate: float, n: int, rtt: float, r: dict[str, Any]) -> Any:
    lat = r["latencies"]
    p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
    interval = 1.0 / rate
    return (
        [
            setup,
            f"{rate:g}/s",
            f"{n:,}",
            behaviour,
            len(lat),
            f"{p50 * 1000:.0f}",
            f"{p99 * 1000:.0f}",
            f"{max(lat) * 1000:.0f}",
            f"{r['wall'] / ((n + len(lat)) / rate):.3f}",
            f"{r['ok']:,}",
            r["server_429"],
        ],
        {
            "what": f"{setup}, {rate:g}/s, {behaviour}: p50 / p99 (ms)",
            "value": f"{p50 * 1000:.0f} / {p99 * 1000:.0f}",
            "target": (f"<= {(interval + rtt) * 1000:.0f} / <= {(3 * interval + rtt) * 1000:.0f}"),
            "met": p50 <= interval + rtt and p99 <= 3 * interval + rtt,
        },
    )


def run(*, quick: bool = False, redis: bool = True) -> list[Section]:
    rows: list[Any] = []
    targets: list[dict[str, Any]] = []
    redis_proc = None
    redis_url = ""
    if redis:
        from bench_redis import start_redis

        redis_proc, redis_url = start_redis()
    try:
        for rate, n in (QUICK_SIZES if quick else SIZES).items():
            options = ["--campaigns", str(n), "--rate-limit", f"{rate:g}"]
            with simulator(*options) as server:
                ids = server.ids()[:n]
                rtt = asyncio.run(idle_rtt(server.url, ids))
                setups: list[tuple[str, Any]] = [("one client", None)]
                if redis:
                    setups.append(("two processes, Redis", redis_url))
                for setup, url in setups:
                    for behaviour, priority in (("today (FIFO)", "background"),
                                                ("priorities", "interactive")):  # fmt: skip
                        server.reset()
                        time.sleep(1.5)  # the server's bucket refills
                        prefix = f"bench-prio-{time.time_ns()}"
                        if url is None:
                            report = asyncio.run(one_client(server.url, ids, priority))
                        else:
                            report = asyncio.run(
                                two_processes(server.url, url, ids, priority, prefix)
                            )
                        timeline = server.timeline()
                        first = timeline[0][0] if timeline else 0.0
                        late = sum(1 for t, status in timeline if status == 429 and t >= first + 1)
                        report["server_429"] = (
                            f"{sum(1 for _, status in timeline if status == 429)} ({late})"
                        )
                        line, target = row(setup, behaviour, rate, n, rtt, report)
                        line.append(f"{rtt * 1000:.1f}")
                        rows.append(line)
                        if behaviour == "priorities":
                            targets.append(target)
                        print(" | ".join(str(v) for v in line), file=sys.stderr, flush=True)
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait()
    return [
        {
            "title": "Interactive calls during a saturating bulk run",
            "about": (
                f"One `analytics.campaign(id)` every {PERIOD:g} s while `gather_campaigns` of "
                "N ids saturates the simulator's limit (the single calls take a token too). "
                "*today (FIFO)*: the single calls queue as `background`, like the bulk run; "
                "*priorities*: they queue as `interactive` (the default). Latencies in ms; "
                "bulk wall / ideal = the bulk run's wall time / ((N + calls) / R); 429s as "
                "counted by the simulator (in brackets: those from one second after the "
                "first request on, while single calls were timed). In the Redis rows, "
                "*today* is the new scripts with every caller `background`, not the main "
                "branch's scripts."
            ),
            "columns": [
                "setup",
                "limit",
                "N",
                "behaviour",
                "calls",
                "p50",
                "p99",
                "max",
                "bulk wall / ideal",
                "bulk ok",
                "429s",
                "idle RTT",
            ],
            "rows": rows,
            "targets": targets,
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--no-redis", action="store_true", help="skip the two-process setup")
    parser.add_argument("--bulk-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bulk_worker:  # the job comes on stdin (5,000 ids are too long for argv)
        job = json.loads(sys.stdin.read())
        report = asyncio.run(redis_bulk(job["base"], job["redis"], job["prefix"], job["ids"]))
        print(json.dumps(report))
        return
    for section in run(quick=args.quick, redis=not args.no_redis):
        print(markdown(section))


if __name__ == "__main__":
    main()
