"""Run every benchmark against local servers and print one markdown report.

    python benchmarks/run_all.py            # full run, about 8 minutes on 2 cores
    python benchmarks/run_all.py --quick    # small sizes, one repeat: a smoke test (< 1 min)
    make bench

Writes ``benchmarks/results/latest.md`` and ``latest.json`` (``quick.md``/``quick.json``
with ``--quick``, so a smoke test never overwrites the figures of a full run) and
``results/ratelimit_timeline.png`` (when matplotlib, the ``bench`` extra, is installed).
Every server and client runs in its own subprocess on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, from anywhere

import bench_faults
import bench_memory
import bench_overhead
import bench_ratelimit
from _common import RESULTS, Section, machine_info, machine_markdown, markdown

BENCHMARKS: dict[str, Callable[..., list[Section]]] = {
    "overhead": bench_overhead.run,
    "ratelimit": bench_ratelimit.run,
    "faults": bench_faults.run,
    "memory": bench_memory.run,
}


def summary(sections: list[Section]) -> str:
    lines = [
        "## Targets",
        "",
        "| benchmark | target | measured | goal | met |",
        "|---|---|---|---|---|",
    ]
    for section in sections:
        for t in section.get("targets", []):
            value = t["value"] if isinstance(t["value"], str) else f"{t['value']:.3g}"
            met = "yes" if t["met"] else "**no**"
            lines.append(f"| {section['title']} | {t['what']} | {value} | {t['target']} | {met} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--repeats", type=int, default=None, help="runs per figure (default 3)")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="repeatable")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    started = time.perf_counter()
    info = machine_info()
    sections: list[Section] = []
    timings: dict[str, float] = {}
    for name, bench in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        sections += bench(quick=args.quick, repeats=repeats)
        timings[name] = time.perf_counter() - t0
    total = time.perf_counter() - started
    mode = "quick (smoke test: sizes too small for conclusions)" if args.quick else "full"
    head = (
        f"# sendkit-async benchmarks ({mode})\n\n{machine_markdown(info)}\n"
        f"Total time {total:.0f} s ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        + f"); median of {repeats} run(s) unless a section says otherwise.\n"
    )
    report = "\n".join([head, summary(sections), *(markdown(s) for s in sections)])
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "quick" if args.quick else "latest"
    (RESULTS / f"{stem}.md").write_text(report)
    data: dict[str, Any] = {"machine": info, "mode": mode, "repeats": repeats, "seconds": total}
    data["sections"] = sections
    (RESULTS / f"{stem}.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    print(f"wrote {RESULTS / (stem + '.md')} and .json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
