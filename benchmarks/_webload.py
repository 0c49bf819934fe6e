"""The load generator of bench_webapp.py: browsers hitting a web app, in their own process.

    python benchmarks/_webload.py URL IDS_FILE --requests N --concurrency C [--give-up S]

Sends N ``GET URL/campaigns/{id}`` (ids drawn from IDS_FILE, seeded), at most C at once,
each given up (its connection closed, as a browser does) after S seconds when set.
Prints one JSON object: answers by status, requests given up, latency p50/p99 in ms over
every request (a given-up one counts as S), wall seconds and requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


async def run(args: argparse.Namespace, ids: list[str]) -> dict[str, Any]:
    rng = random.Random(args.seed)
    plan = (
        ids[: args.requests] if args.distinct else [rng.choice(ids) for _ in range(args.requests)]
    )
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    gate = asyncio.Semaphore(args.concurrency)
    timeout = aiohttp.ClientTimeout(total=args.give_up or None)
    connector = aiohttp.TCPConnector(limit=args.concurrency)

    async def one(http: aiohttp.ClientSession, campaign_id: str) -> None:
        async with gate:
            start = time.perf_counter()
            try:
                async with http.get(f"{args.url}/campaigns/{campaign_id}") as resp:
                    await resp.read()
                    statuses[str(resp.status)] += 1
            except asyncio.TimeoutError:
                statuses["gave up"] += 1
            except aiohttp.ClientError as exc:
                statuses[type(exc).__name__] += 1
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await asyncio.gather(*(one(http, i) for i in plan))
    wall = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(plan),
        "statuses": dict(statuses),
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "wall_s": wall,
        "rps": len(plan) / wall,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/_webload.py")
    parser.add_argument("url")
    parser.add_argument("ids")
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--give-up", type=float, default=0.0)
    parser.add_argument("--distinct", action="store_true", help="the first N ids, once each")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args, Path(args.ids).read_text().split()))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
