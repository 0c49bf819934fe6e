"""Peak memory of ``iter_campaigns`` over a generator of N ids, for growing N.

    python benchmarks/bench_memory.py [--quick] [--sizes 100000,1000000]

A tiny aiohttp.web responder (own process) answers any campaign id with the seed fixture's
body (id substituted), so N is not bounded by the simulator's workspace. The client (own
process) streams ``iter_campaigns`` over a generator of N synthetic ids with concurrency 64
and keeps nothing. Reported: peak RSS (``VmHWM``; ``ru_maxrss`` would include the parent's
size, as Linux keeps it across fork + exec) of the client process, its RSS after
10 % of the ids, time, and the peak RSS of a process that only imports sendkit_async.
One run per size: RSS is not noisy the way time is.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from _common import BENCH, ROOT, Section, Server, child_env, markdown, run_client

CONCURRENCY = 64
FULL_SIZES = (100_000, 300_000)
QUICK_SIZES = (5_000, 20_000)  # a smoke test: the quick run stays well under a minute
TARGET_MB = 150.0


def baseline_kb() -> int:
    """Peak RSS of a process that imports sendkit_async and does nothing else."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import sendkit_async, _clients;"
        "print(_clients.peak_rss_kb())"
    )
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", code, str(BENCH)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
    )
    return int(done.stdout.strip())


def run(
    *, quick: bool = False, repeats: int = 1, sizes: tuple[int, ...] | None = None
) -> list[Section]:
    sizes = sizes or (QUICK_SIZES if quick else FULL_SIZES)
    reports: list[dict[str, Any]] = []
    with Server("echo") as server:
        run_client("sendkit_async", server.url, generate=1000, iter=True)  # warm the server
        for n in sizes:
            report = run_client(
                "sendkit_async", server.url, generate=n, iter=True, concurrency=CONCURRENCY
            )
            if report["ok"] != n:
                raise RuntimeError(f"memory run lost results: {report}")
            reports.append(report)
    base = baseline_kb() / 1024
    rows: list[list[Any]] = [["`import sendkit_async` only", "-", base, "-", "-", "-"]]
    for r in reports:
        rows.append(
            [
                "sendkit_async `iter_campaigns`",
                r["n"],
                r["maxrss_kb"] / 1024,
                (r["rss_early_kb"] or 0) / 1024,
                r["wall"],
                r["n"] / r["wall"],
            ]
        )
    peaks = [r["maxrss_kb"] / 1024 for r in reports]
    growth = peaks[-1] - peaks[0]
    return [
        {
            "title": "Memory (iter_campaigns over a generator)",
            "about": (
                f"Ids from a generator, concurrency {CONCURRENCY}, results dropped as they "
                "arrive; fixed-body local responder in its own process. One run per size."
            ),
            "columns": ["process", "ids", "peak RSS MB", "RSS after 10 % MB", "wall s", "ids/s"],
            "rows": rows,
            "targets": [
                {
                    "what": f"peak RSS at N = {max(sizes):,}",
                    "value": f"{max(peaks):.0f} MB",
                    "target": f"< {TARGET_MB:.0f} MB",
                    "met": max(peaks) < TARGET_MB,
                },
                {
                    "what": f"peak RSS growth from N = {sizes[0]:,} to {sizes[-1]:,}",
                    "value": f"{growth:+.1f} MB",
                    "target": "flat (< 5 MB)",
                    "met": growth < 5.0,
                },
            ],
            "notes": [],
            "raw": {"baseline_kb": base * 1024, "runs": reports},
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=1, help="ignored: one run per size")
    parser.add_argument("--sizes", help="comma-separated N, e.g. 100000,1000000")
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else None
    for section in run(quick=args.quick, sizes=sizes):
        print(markdown(section))
    print(json.dumps(section["raw"]["runs"][-1]))


if __name__ == "__main__":
    main()
