"""The simulator's command line refuses bad arguments, stops on SIGTERM at any time,
and answers an oversized request with a 4xx instead of logging a traceback."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from sendkit_async.simulator import SimulatorConfig, run_simulator
from sendkit_async.simulator._cli import build_parser
from tests.simulator.sim_helpers import HEADERS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "-1"],
        ["--port", "70000"],
        ["--port", "http"],
        ["--campaigns", "99999999999"],
        ["--campaigns", "-5"],
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage:") and f"argument {argv[0]}" in err
    assert "Traceback" not in err


def test_campaigns_bound_is_the_configs_too() -> None:
    with pytest.raises(ValueError, match="campaigns must be an int from 0 to 1,000,000"):
        SimulatorConfig(campaigns=1_000_001)


@pytest.mark.timeout(60)
async def test_sigterm_while_the_workspace_is_generated() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sendkit_async.simulator", "--port", "0",
        "--campaigns", "1000000", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        assert line == b"generating 1,000,000 campaigns...\n"
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert err == b""
    assert b"listening" not in out  # stopped during generation, not after it


async def test_oversized_query_is_a_4xx_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        run_simulator(SimulatorConfig(campaigns=3)) as sim,
        aiohttp.ClientSession(headers=HEADERS) as session,
        session.get(f"{sim.base_url}/v1/campaigns?search={'a' * 100_000}") as response,
    ):
        assert 400 <= response.status < 500
        await response.read()
    assert [r for r in caplog.records if r.exc_info] == []
    assert all(r.levelno < logging.WARNING for r in caplog.records), caplog.text
