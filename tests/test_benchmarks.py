"""The benchmark scripts run end to end (quick mode); no figure is ever asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
HEADINGS = (
    "# sendkit-async benchmarks",
    "## Targets",
    "## Overhead (unthrottled server)",
    "## Under a rate limit",
    "## Under faults",
    "## Memory (iter_campaigns over a generator)",
    "| client | requests | CPU s / 1,000 req |",
)


def bench_env(results: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDKIT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["SENDKIT_BENCH_RESULTS"] = str(results)
    return env


def run(results: Path, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` from the repository root with a clean benchmark environment."""
    return subprocess.run(  # noqa: S603 - our own scripts, fixed arguments
        [sys.executable, *args],
        cwd=ROOT,
        env=bench_env(results),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.timeout(180)
def test_run_all_quick_prints_every_table(tmp_path: Path) -> None:
    done = run(tmp_path, [str(BENCH / "run_all.py"), "--quick"], 150)
    assert done.returncode == 0, done.stderr[-3000:]
    for heading in HEADINGS:
        assert heading in done.stdout
    assert (tmp_path / "quick.md").read_text() == done.stdout.rstrip("\n") + "\n"
    assert (tmp_path / "quick.json").exists()


def test_plot_without_matplotlib_says_so(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['matplotlib'] = None; sys.path.insert(0, sys.argv[1]);"
        "from pathlib import Path; import _plot;"
        "print(_plot.draw([], 1.0, Path(sys.argv[2])))"
    )
    png = tmp_path / "timeline.png"
    done = run(tmp_path, ["-c", code, str(BENCH), str(png)], 60)
    assert done.returncode == 0, done.stderr
    assert "matplotlib is not installed" in done.stdout
    assert not png.exists()


@pytest.mark.timeout(120)
def test_bench_frames_runs_small(tmp_path: Path) -> None:
    done = run(tmp_path, [str(BENCH / "bench_frames.py"), "--rows", "2000", "--repeats", "1"], 110)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in rows[1:]] == [
        "| columns",
        "| to_pandas",
        "| to_polars",
        "| to_arrow",
        "| csv",
    ]


@pytest.mark.timeout(240)
def test_bench_webapp_quick_figure_runs_the_example_app_end_to_end(tmp_path: Path) -> None:
    # Simulator, FastAPI example under uvicorn and load generator, each its own process.
    done = run(tmp_path, [str(BENCH / "bench_webapp.py"), "--quick", "--only", "figure"], 200)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "## The FastAPI example under load, upstream limited to 50 requests/s" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| 16 |", "| 100 |"))]
    assert [row.split(" | ")[1] for row in rows] == [
        "without",
        "coalescing + 30 s cache",
        "without",
        "coalescing + 30 s cache",
    ]  # the old default cap and the new one, each without and with coalescing + cache
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        answered, unavailable, other = (int(c.replace(",", "")) for c in cells[4:7])
        assert answered + unavailable + other == 400  # every request got an answer


@pytest.mark.timeout(120)
def test_bench_progress_runs_small(tmp_path: Path) -> None:
    import shutil

    with_redis = shutil.which("redis-server") is not None  # else the encoding alone
    args = [str(BENCH / "bench_progress.py"), "--quick"]
    done = run(tmp_path, args + ([] if with_redis else ["--no-redis"]), 110)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split(" | ")[0] for line in done.stdout.splitlines() if line.startswith("| ")]
    kinds = ("to_wire", "encode", "record") if with_redis else ("to_wire", "encode")
    shapes = [f"| {what} {shape}" for shape in ("seed", "current") for what in kinds]
    assert rows[1:] == ["| request", *shapes]
