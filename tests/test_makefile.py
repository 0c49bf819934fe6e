"""`make demo` installs only what the demo needs; `make test` the whole dev extra."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _dry_run(target: str, venv: Path) -> str:
    make = shutil.which("make")
    assert make is not None
    done = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
        [make, "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_demo_installs_the_cli_extra_only_and_test_the_dev_extra(tmp_path: Path) -> None:
    demo = _dry_run("demo", tmp_path / "venv")
    assert "-e '.[cli]'" in demo
    assert ".[dev]" not in demo
    test = _dry_run("test", tmp_path / "venv")
    assert "-e '.[dev]'" in test
    assert "pytest" in test
