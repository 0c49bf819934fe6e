"""The command line as a user meets it: pipes, Ctrl-C, exit codes, help, messages."""

from __future__ import annotations

import asyncio
import csv
import fcntl
import io
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sendkit_async.cli import main
from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator
from tests.helpers import Script, fixture, json_reply, run_python

KEY = "sk_cli_test_key"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(SimulatorConfig(campaigns=120, seed=3, api_keys=(KEY,))) as s:
        yield s


def _env(base_url: str, key: str = KEY) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SENDKIT_")}
    return {**clean, "SENDKIT_API_KEY": key, "SENDKIT_BASE_URL": base_url}


async def cli(*args: str, base_url: str, key: str = KEY) -> tuple[int, str, str]:
    return await run_python(
        "-m", "sendkit_async", *args, env={"SENDKIT_API_KEY": key, "SENDKIT_BASE_URL": base_url}
    )


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_closed_pipe_ends_quietly(sim: Simulator, fmt: str) -> None:
    """`... | head -1`: the reader closes the pipe after one chunk; no traceback, exit 141."""
    read_end, write_end = os.pipe()
    # A one-page pipe: the output cannot all fit before the reader goes away.
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sendkit_async", "analytics", "--all", "--format", fmt,
            cwd=ROOT, env=_env(sim.base_url), stdout=write_end, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        os.close(write_end)
        write_end = -1
        first = await asyncio.get_running_loop().run_in_executor(None, os.read, read_end, 100)
        assert first
        os.close(read_end)
        read_end = -1
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
    assert err.decode() == ""
    assert proc.returncode == 141


async def test_debug_does_not_change_the_exit_code(sim: Simulator) -> None:
    code, _, err = await cli(
        "--debug", "analytics", sim.campaign_ids[0], key="sk_wrong", base_url=sim.base_url
    )
    assert code == 2
    assert "Traceback" in err  # --debug shows it, and still exits like without it
    assert err.strip().splitlines()[-1].startswith("sendkit-async: error: HTTP 401")
    assert "sk_wrong" not in err


async def test_unreachable_api_says_so_with_its_own_exit_code() -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ids = ["664a1b2c3d4e5f6a7b8c9d02", "664a1b2c3d4e5f6a7b8c9d03"]
    code, out, err = await cli(
        "analytics", *ids, "--format", "jsonl", base_url=f"http://127.0.0.1:{port}"
    )
    assert code == 3
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sendkit-async: error: could not reach the API")
    assert "none of 2 campaigns fetched" in lines[0]


def test_missing_key_message_speaks_to_cli_users(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDKIT_API_KEY", " ")
    assert main(["analytics", "x"]) == 2
    err = capsys.readouterr().err
    assert "SENDKIT_API_KEY" in err
    assert "AsyncSendKit" not in err and "api_key=" not in err


def test_help_lists_every_exit_code_and_the_formats(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["analytics", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "exit status:" in out
    for code in ("0", "1", "2", "3", "130", "141"):
        assert f"\n  {code} " in out, code
    assert "jsonl (one object a line" in " ".join(out.split())  # help text wraps
    assert "SENDKIT_API_KEY" in out


async def test_csv_total_leads_come_from_the_listing(sim: Simulator, tmp_path: Any) -> None:
    target = tmp_path / "all.csv"
    code, _, err = await cli(
        "analytics", "--all", "--format", "csv", "-o", str(target), base_url=sim.base_url
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    listed = {c.id: c.total_leads for c in sim.workspace}
    assert len(rows) == 120
    assert all(row["total_leads"] != "" for row in rows)
    assert {row["id"]: int(row["total_leads"]) for row in rows} == listed


async def test_json_interrupted_writes_a_valid_partial_array(server: Script) -> None:
    """Two campaigns answered, the third hangs; Ctrl-C then gives the two as a JSON array."""
    third, release = asyncio.Event(), asyncio.Event()

    async def answer(request: web.Request) -> web.Response:
        if server.count("/v1/analytics/campaigns/") >= 3:
            third.set()
            await release.wait()
        body = fixture("analytics_campaign_current.json")
        body["data"]["campaign"]["id"] = request.path.rsplit("/", 1)[1]
        return json_reply(body)

    server.default = answer
    ids = [f"664a1b2c3d4e5f6a7b8c9d{n:02x}" for n in range(5)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sendkit_async", "analytics", *ids, "--format", "json",
        "--concurrency", "1", cwd=ROOT, env=_env(server.base_url),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        # With one request in flight, the third is sent only after the second is written.
        await asyncio.wait_for(third.wait(), 60)
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        release.set()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130
    assert err.decode().strip() == "interrupted"
    rows = json.loads(out)
    assert [r["campaign"]["id"] for r in rows] == ids[:2]
