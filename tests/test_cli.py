"""The command line in a subprocess, against the simulator on loopback."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sendkit_async.cli._output import CSV_COLUMNS
from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator
from tests.helpers import run_python

KEY = "sk_cli_test_key"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(SimulatorConfig(campaigns=120, seed=3, api_keys=(KEY,))) as s:
        yield s


async def cli(*args: str, key: str = KEY, base_url: str = "") -> tuple[int, str, str]:
    env = {"SENDKIT_API_KEY": key}
    if base_url:
        env["SENDKIT_BASE_URL"] = base_url
    return await run_python("-m", "sendkit_async", *args, env=env, timeout=60)


async def test_json_round_trips_api_names(sim: Simulator) -> None:
    ids = sim.campaign_ids[:3]
    code, out, err = await cli("analytics", *ids, "--format", "json", base_url=sim.base_url)
    assert code == 0, err
    rows = json.loads(out)
    assert [r["campaign"]["id"] for r in rows] == ids
    assert "stepStats" in rows[0] and "statusBreakdown" in rows[0]
    assert err == ""  # no progress bar when stderr is not a terminal
    # the same bodies the API serves, field for field
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{sim.base_url}/v1/analytics/campaigns/{ids[0]}", headers={"X-Api-Key": KEY}
        ) as response,
    ):
        api = (await response.json())["data"]
    assert rows[0] == api


async def test_jsonl_and_csv(sim: Simulator, tmp_path: Any) -> None:
    ids = sim.campaign_ids[5:9]
    code, out, _ = await cli("analytics", *ids, "--format", "jsonl", base_url=sim.base_url)
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["campaign"]["id"] for r in lines] == ids

    target = tmp_path / "out.csv"
    code, out, _ = await cli(
        "analytics", *ids, "--format", "csv", "-o", str(target), base_url=sim.base_url
    )
    assert code == 0
    assert out == ""
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["id"] for r in rows] == ids
    by_id = {r["campaign"]["id"]: r for r in lines}
    for row in rows:
        api = by_id[row["id"]]
        assert int(row["sent"]) == api["stats"]["sent"]
        assert row["name"] == api["campaign"]["name"]
        expected = api["stats"]["opened"] / api["stats"]["sent"] if api["stats"]["sent"] else 0
        assert float(row["open_rate"]) == pytest.approx(expected, abs=1e-4)


async def test_table_format(sim: Simulator) -> None:
    code, out, _ = await cli("analytics", sim.campaign_ids[0], base_url=sim.base_url)
    assert code == 0
    assert "Campaign analytics" in out
    assert sim.campaign_ids[0] in out


async def test_partial_failure_exit_1_rest_written(sim: Simulator) -> None:
    good = sim.campaign_ids[:2]
    code, out, err = await cli(
        "analytics",
        good[0],
        "ffffffffffffffffffffffff",
        good[1],
        "--format",
        "jsonl",
        base_url=sim.base_url,
    )
    assert code == 1
    assert [json.loads(line)["campaign"]["id"] for line in out.splitlines()] == good
    assert "failed: ffffffffffffffffffffffff: HTTP 404" in err
    assert "Traceback" not in err


async def test_bad_key_exit_2_one_line(sim: Simulator) -> None:
    code, out, err = await cli(
        "analytics", sim.campaign_ids[0], "--format", "json", key="sk_wrong", base_url=sim.base_url
    )
    assert code == 2
    assert out.strip() in ("", "[]")
    assert err.startswith("sendkit-async: error: HTTP 401")
    assert len(err.strip().splitlines()) == 1
    assert "sk_wrong" not in err


async def test_usage_errors_exit_2(sim: Simulator) -> None:
    code, _, err = await cli("analytics", base_url=sim.base_url)
    assert code == 2
    assert "ids or --all" in err
    code, _, err = await cli("analytics", "x", "--format", "xml", base_url=sim.base_url)
    assert code == 2
    code, _, err = await cli("analytics", "x", "--from", "yesterday", base_url=sim.base_url)
    assert code == 2
    assert "--from must be an ISO 8601 date" in err
    code, _, err = await cli("analytics", "x", key="", base_url=sim.base_url)
    assert code == 2
    assert "SENDKIT_API_KEY" in err


async def test_all_walks_every_page_with_status(sim: Simulator) -> None:
    code, out, err = await cli("analytics", "--all", "--format", "jsonl", base_url=sim.base_url)
    assert code == 0, err
    got = [json.loads(line)["campaign"]["id"] for line in out.splitlines()]
    assert sorted(got) == sorted(sim.campaign_ids)
    assert sim.stats.by_path.get("/v1/campaigns", 0) >= 3  # 120 campaigns, 100 per page + probe

    code, out, _ = await cli(
        "analytics", "--all", "--status", "active", "--format", "jsonl", base_url=sim.base_url
    )
    statuses = {json.loads(line)["campaign"]["status"] for line in out.splitlines()}
    assert code == 0
    assert statuses == {"active"}


async def test_demo_completes() -> None:
    code, out, err = await cli("demo", "--campaigns", "300", "--no-progress")
    assert code in (0, 1), err
    assert "Workspace totals" in out
    assert "Top 10 campaigns by reply rate" in out
    assert "Run report" in out
    # the limiter's waiting is summed over requests: said so, not shown as 429 throttling
    assert "paced waiting" in out and "summed over requests" in out
    assert "Traceback" not in err


def test_simulate_options_are_the_simulators() -> None:
    from sendkit_async.cli import build_parser

    args = build_parser().parse_args(
        ["simulate", "--port", "0", "--rate-limit", "5", "--rate-limit-headers", "ietf"]
    )
    assert (args.port, args.rate_limit, args.rate_limit_headers) == (0, 5.0, "ietf")
