"""The raw view's price: CPU per 1,000 calls of ``with_raw_response.analytics.campaign``
beside the plain ``analytics.campaign``, against an unthrottled simulator.

    python benchmarks/bench_raw.py [--quick] [--repeats N]

The simulator runs in its own process; this process is the client and measures its own
CPU time (``time.process_time``). Plain and raw runs alternate, so drift hits both alike;
figures are medians. Plain calls run the same code as before the raw view existed: this
measures what a raw call adds (a throwaway client copy, the kept answer, the hints).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, from anywhere
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's package

from _common import API_KEY, simulator

CONCURRENCY = 32


async def one_run(url: str, ids: list[str], raw: bool) -> float:
    """CPU milliseconds per 1,000 calls, fetching every id once."""
    from sendkit_async import AsyncSendKit

    async with AsyncSendKit(api_key=API_KEY, base_url=url, max_concurrency=CONCURRENCY) as client:
        fetch = client.with_raw_response.analytics.campaign if raw else client.analytics.campaign
        await asyncio.gather(*(fetch(i) for i in ids[:100]))  # warm the pool
        started = time.process_time()
        await asyncio.gather(*(fetch(i) for i in ids))
        return (time.process_time() - started) * 1e6 / len(ids)


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    repeats = int(argv[argv.index("--repeats") + 1]) if "--repeats" in argv else 1 if quick else 5
    n = 500 if quick else 3_000
    figures: dict[str, list[float]] = {"plain": [], "raw": []}
    with simulator("--campaigns", str(n)) as server:
        ids = server.ids()
        asyncio.run(one_run(server.url, ids, raw=False))  # the simulator renders every body
        for _ in range(repeats):
            for mode in ("plain", "raw"):
                figures[mode].append(asyncio.run(one_run(server.url, ids, raw=mode == "raw")))
    plain, raw = (statistics.median(figures[m]) for m in ("plain", "raw"))
    print(f"| call | CPU ms / 1,000 calls (median of {repeats}, {n} calls each) |")
    print("|---|---|")
    print(f"| `client.analytics.campaign(id)` | {plain:.0f} |")
    print(f"| `client.with_raw_response.analytics.campaign(id)` | {raw:.0f} ({raw / plain:.2f}x) |")


if __name__ == "__main__":
    main(sys.argv[1:])
