"""Throughput of the SendKit simulator: requests/s it serves to a concurrent aiohttp client.

Starts ``python -m sendkit_async.simulator --port 0`` in a subprocess (its own process and
core), lists every campaign id through the API, warms the body cache, then fetches
``GET /v1/analytics/campaigns/{id}`` round-robin over the ids with ``--concurrency``
workers and prints requests/s and latency percentiles.

    python benchmarks/simulator_throughput.py            # 20,000 requests
    python benchmarks/simulator_throughput.py --quick    # 500 requests
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import re
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
HEADERS = {"X-Api-Key": "sk_bench_key"}


async def start_simulator(campaigns: int) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sendkit_async.simulator", "--port", "0",
        "--campaigns", str(campaigns),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    match = re.search(r"listening on (\S+)", line)
    if match is None:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return proc, match.group(1)


async def list_ids(session: aiohttp.ClientSession, base: str) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        async with session.get(f"{base}/v1/campaigns", params=params) as resp:
            body = await resp.json()
        ids.extend(item["_id"] for item in body["data"])
        if not body["pagination"]["hasMore"]:
            return ids
        cursor = body["pagination"]["nextCursor"]


async def drive(
    session: aiohttp.ClientSession, urls: list[str], total: int, concurrency: int
) -> tuple[float, list[float], Counter[int]]:
    counter = itertools.count()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    async def worker() -> None:
        while (i := next(counter)) < total:
            t0 = time.perf_counter()
            async with session.get(urls[i % len(urls)]) as resp:
                await resp.read()
                statuses[resp.status] += 1
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies, statuses


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc only; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    total = 500 if args.quick else args.requests
    proc, base = await start_simulator(args.campaigns)
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(headers=HEADERS, connector=connector) as session:
            ids = await list_ids(session, base)
            urls = [f"{base}/v1/analytics/campaigns/{cid}" for cid in ids]
            await drive(session, urls, min(len(urls), total), args.concurrency)  # warm-up
            cpu_before = cpu_seconds(proc.pid)
            elapsed, latencies, statuses = await drive(session, urls, total, args.concurrency)
            cpu_after = cpu_seconds(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}")  # fmt: skip
    print(f"campaigns: {len(ids)}, requests: {total}, concurrency: {args.concurrency}")
    print(f"statuses: {dict(sorted(statuses.items()))}")
    print(f"elapsed: {elapsed:.2f} s")
    print(f"throughput: {total / elapsed:,.0f} requests/s")
    if cpu_before is not None and cpu_after is not None and cpu_after > cpu_before:
        # The client often saturates first: show what the server itself needed.
        used = cpu_after - cpu_before
        print(
            f"server CPU: {used / elapsed:.0%} of one core, {used / total * 1e6:.0f} us/request "
            f"(~{total / used:,.0f} requests/s per saturated core)"
        )
    print(
        f"latency: p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="500 requests")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--campaigns", type=int, default=2000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
