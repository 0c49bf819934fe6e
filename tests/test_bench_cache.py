"""bench_cache.py runs end to end (quick mode); its figures are printed, never asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_benchmarks import BENCH, ROOT, bench_env


@pytest.mark.timeout(180)
def test_bench_cache_quick_prints_both_tables(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, str(BENCH / "bench_cache.py"), "--quick"],
        cwd=ROOT,
        env=bench_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "## Coalescing and cache: 50 concurrent identical calls" in done.stdout
    assert "over 20 hot campaigns" in done.stdout
    for mode in ("| neither |", "| coalescing |", "| coalescing + cache |"):
        assert done.stdout.count(mode) == 2 + (mode == "| coalescing |")  # + a column head
    assert "## Coalescing: CPU per single call that shares nothing" in done.stdout
