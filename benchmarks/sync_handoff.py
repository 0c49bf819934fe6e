"""The blocking client's hand-off alone: CPU per call of ``SendKit``'s portal, no HTTP.

    python benchmarks/sync_handoff.py [--calls N]

Runs a coroutine that returns at once through the private loop thread (what every
``SendKit`` call adds to the async client's work: a ``concurrent.futures.Future``,
``call_soon_threadsafe``'s wake-up of the loop, a task, the GIL passing between two
threads), N times from the main thread; prints microseconds of process CPU per call.
"""

from __future__ import annotations

import argparse
import statistics
import time

from sendkit_async._portal import Portal


async def nothing() -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    portal = Portal()
    try:
        figures = []
        for _ in range(5):
            start = time.process_time()
            for _ in range(args.calls):
                portal.run(nothing())
            figures.append((time.process_time() - start) / args.calls * 1e6)
    finally:
        portal.stop()
    print(f"portal.run hand-off: {statistics.median(figures):.1f} us CPU per call (median of 5)")


if __name__ == "__main__":
    main()
