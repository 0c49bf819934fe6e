"""``to_pandas`` / ``to_polars`` / ``to_arrow`` of N campaign results: time and peak memory.

    python benchmarks/bench_frames.py [--quick] [--rows 100000] [--repeats 3]

Each converter runs in a process of its own (so one library's memory never counts for
another). The process builds N ``CampaignAnalytics`` with ``from_wire`` from the two
documented body shapes (the seed shape with ``totalLeads``; the current shape without it,
with subsequences), ids made distinct, counts varied; converts 1,000 rows once so the
library is imported and warm; then converts the N rows ``--repeats`` times.

Reported per converter: median wall time and CPU time of a conversion; peak memory of
the first conversion above what the process held before it, as RSS (``VmHWM`` after
resetting it through ``/proc/self/clear_refs``; counts every allocator: Python, numpy,
Arrow's pool, polars' Rust heap), and as ``tracemalloc``'s peak in a separate, slower
conversion (Python and numpy allocations only: it cannot see Arrow's or polars' own
buffers, so it under-counts those two); the size of the result as the library reports it.
Rows for comparison: ``columns()`` (the shared pure-Python pass that reads the values out
of the models, which every converter runs first) and the CLI's CSV writer into memory.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
FIXTURES = ROOT / "tests" / "fixtures"
CONVERTERS = ("columns", "to_pandas", "to_polars", "to_arrow", "csv")


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Make VmHWM start again from the current RSS (Linux >= 4.0); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def make_results(n: int) -> list[Any]:
    from sendkit_async import CampaignAnalytics, from_wire

    shapes = [
        json.dumps(json.loads((FIXTURES / name).read_text())["data"])
        for name in ("analytics_campaign_seed.json", "analytics_campaign_current.json")
    ]
    out = []
    for i in range(n):
        body = json.loads(shapes[i % 2])  # a fresh body, as a response would give
        body["campaign"]["id"] = f"{i:024x}"
        body["campaign"]["status"] = ("active", "paused", "completed")[i % 3]
        body["stats"]["sent"] = 1000 + i % 997
        out.append(from_wire(body, CampaignAnalytics))
    return out


def convert(name: str, results: list[Any]) -> Any:
    import sendkit_async
    from sendkit_async._frames import columns
    from sendkit_async.cli._output import write_results

    if name == "columns":
        return columns(results)
    if name == "csv":
        out = io.StringIO()
        write_results(results, "csv", out)
        return out
    return getattr(sendkit_async, name)(results)


def size_mb(value: Any) -> float | None:
    if hasattr(value, "memory_usage"):  # pandas
        return float(value.memory_usage(deep=True).sum()) / 2**20
    if hasattr(value, "estimated_size"):  # polars
        return float(value.estimated_size()) / 2**20
    if hasattr(value, "nbytes"):  # pyarrow
        return float(value.nbytes) / 2**20
    if isinstance(value, io.StringIO):
        return len(value.getvalue()) / 2**20
    return None


def worker(name: str, rows: int, repeats: int) -> dict[str, Any]:
    """Runs in the child process: one converter, all measurements."""
    started = time.perf_counter()
    results = make_results(rows)
    build_s = time.perf_counter() - started
    convert(name, results[:1000])  # imports and warms the library
    gc.collect()
    before_kb = _status_kb("VmRSS")
    reset = _reset_peak()
    walls, cpus = [], []
    peak_kb: int | None = None
    size: float | None = None
    for i in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        value = convert(name, results)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if i == 0:
            peak_kb = _status_kb("VmHWM") - before_kb if reset else None
            size = size_mb(value)
        del value
        gc.collect()
    tracemalloc.start()
    convert(name, results)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "converter": name,
        "rows": rows,
        "build_s": build_s,
        "wall_s": statistics.median(walls),
        "cpu_s": statistics.median(cpus),
        "rss_peak_mb": None if peak_kb is None else peak_kb / 1024,
        "tracemalloc_peak_mb": traced_peak / 2**20,
        "result_mb": size,
        "input_rss_mb": before_kb / 1024,
    }


def run_one(name: str, rows: int, repeats: int) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - this script, fixed arguments
        [
            sys.executable,
            __file__,
            "--worker",
            name,
            "--rows",
            str(rows),
            "--repeats",
            str(repeats),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 1 repeat")
    parser.add_argument("--worker", choices=CONVERTERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    rows = args.rows or (10_000 if args.quick else 100_000)
    repeats = args.repeats or (1 if args.quick else 3)
    if args.worker:
        print(json.dumps(worker(args.worker, rows, repeats)))
        return
    reports = [run_one(name, rows, repeats) for name in CONVERTERS]
    print(f"{rows:,} CampaignAnalytics, median of {repeats} conversions, each converter")
    print(f"in its own process (input built in {reports[0]['build_s']:.1f} s, holding")
    print(f"{reports[0]['input_rss_mb']:.0f} MB RSS before the first conversion)\n")
    headers = ["converter", "wall s", "CPU s", "peak RSS above input, MB"]
    headers += ["tracemalloc peak, MB", "result, MB"]
    print("| " + " | ".join(headers) + " |")
    print("|---|---|---|---|---|---|")
    for r in reports:
        print(
            f"| {r['converter']} | {r['wall_s']:.3f} | {r['cpu_s']:.3f} "
            f"| {_fmt(r['rss_peak_mb'], '.1f')} | {r['tracemalloc_peak_mb']:.1f} "
            f"| {_fmt(r['result_mb'], '.1f')} |"
        )


if __name__ == "__main__":
    main()
