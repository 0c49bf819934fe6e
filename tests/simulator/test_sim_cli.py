"""The command line, in-process (arguments) and as a real subprocess (serve, SIGTERM)."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from sendkit_async.simulator._cli import build_parser, config_from_args, main
from tests.simulator.sim_helpers import HEADERS

ROOT = Path(__file__).resolve().parents[2]


def test_arguments_map_to_config() -> None:
    args = build_parser().parse_args(
        ["--campaigns", "12", "--seed", "4", "--shape", "original", "--rate-limit", "2.5",
         "--burst", "4", "--rate-limit-headers", "ietf", "--fault-rate", "0.1",
         "--fault-retry-after", "--reset-rate", "0.05", "--latency-ms", "3", "--jitter-ms", "2",
         "--slow-body-ms", "7", "--api-key", "sk_a", "--api-key", "sk_b", "--port", "0"]
    )  # fmt: skip
    cfg = config_from_args(args)
    assert (args.host, args.port) == ("127.0.0.1", 0)
    assert (cfg.campaigns, cfg.seed, cfg.shape) == (12, 4, "original")
    assert (cfg.rate_limit, cfg.burst, cfg.rate_limit_headers) == (2.5, 4, "ietf")
    assert (cfg.fault_rate, cfg.fault_retry_after, cfg.reset_rate) == (0.1, True, 0.05)
    assert (cfg.latency_ms, cfg.jitter_ms, cfg.slow_body_ms) == (3.0, 2.0, 7.0)
    assert cfg.api_keys == ("sk_a", "sk_b")
    defaults = build_parser().parse_args([])
    assert (defaults.port, defaults.campaigns, defaults.api_keys) == (8787, 2000, [])


def test_bad_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--fault-rate", "1.5"])
    assert exc.value.code == 2
    assert "fault_rate must be between 0 and 1" in capsys.readouterr().err


@pytest.mark.timeout(30)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_subprocess_serves_and_stops_cleanly(sig: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sendkit_async.simulator", "--port", "0", "--campaigns", "25",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        match = re.fullmatch(
            r"SendKit simulator listening on (http://127\.0\.0\.1:\d+) \(25 campaigns\)\n", line
        )
        assert match, line
        url = f"{match.group(1)}/v1/campaigns?limit=5"
        async with aiohttp.ClientSession(headers=HEADERS) as session, session.get(url) as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["pagination"]["total"] == 25
        proc.send_signal(sig)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        assert await proc.stderr.read() == b""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
