"""DataFrames of what real calls return (against the simulator), and the CLI's Parquet output."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sendkit_async
from sendkit_async import AsyncSendKit, BulkError, CampaignAnalytics, RetryPolicy
from sendkit_async.cli._output import CSV_COLUMNS
from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator
from tests.helpers import run_python

KEY = "sk_frames_live_key"
MISSING = "ffffffffffffffffffffffff"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = SimulatorConfig(campaigns=40, seed=11, api_keys=(KEY,), fault_rate=0.0)
    async with run_simulator(config) as s:
        yield s


def client(sim: Simulator) -> AsyncSendKit:
    return AsyncSendKit(api_key=KEY, base_url=sim.base_url, retry=RetryPolicy(max_retries=0))


def _no_key_anywhere(table: pa.Table) -> None:
    for column in table.columns:
        for value in column.to_pylist():
            assert KEY not in str(value)


async def test_gather_with_exceptions_and_bulk_error(sim: Simulator) -> None:
    ids = [sim.campaign_ids[0], MISSING, sim.campaign_ids[1]]
    async with client(sim) as c:
        out = await c.gather_campaigns(ids, return_exceptions=True)
        with pytest.raises(BulkError) as caught:
            await c.gather_campaigns(ids)
    good = [r for r in out if isinstance(r, CampaignAnalytics)]
    assert [a.id for a in good] == [ids[0], ids[2]]

    listed = sendkit_async.to_arrow(out)
    assert listed.column("id").to_pylist() == [ids[0], None, ids[2]]
    error = listed.column("error").to_pylist()
    assert error[0] is None and error[2] is None
    assert error[1] is not None and error[1].startswith("NotFoundError: HTTP 404")
    _no_key_anywhere(listed)

    mapped = sendkit_async.to_polars(dict(zip(ids, out, strict=True)))
    assert mapped["id"].to_list() == ids
    assert mapped["sent"].to_list() == [good[0].stats.sent, None, good[1].stats.sent]

    bulk = sendkit_async.to_pandas(caught.value)
    assert list(bulk["id"]) == [ids[0], ids[2], MISSING]
    assert bulk["error"].isna().tolist() == [True, True, False]
    assert bulk["name"].tolist()[:2] == [a.campaign.name for a in good]
    skipped = sendkit_async.to_pandas(caught.value, errors="skip")
    assert list(skipped.columns) == list(CSV_COLUMNS)
    assert list(skipped["id"]) == [ids[0], ids[2]]


async def test_iter_campaigns_daily_mailboxes_and_listing(sim: Simulator) -> None:
    ids = [*sim.campaign_ids[:3], MISSING]
    async with client(sim) as c:
        results = [r async for r in c.iter_campaigns(ids, ordered=True)]
        daily = await c.analytics.daily()
        mailboxes = await c.analytics.mailboxes()
        listed = [s async for s in c.campaigns.iter()]
    frame = sendkit_async.to_polars(results)
    assert frame["id"].to_list() == ids
    assert frame["error"].to_list()[:3] == [None, None, None]
    assert frame["sent"].to_list()[:3] == [r.unwrap().stats.sent for r in results[:3]]

    assert daily and mailboxes
    days = sendkit_async.to_pandas(daily)
    assert [t.date() for t in days["date"]] == [d.date for d in daily]
    assert days["sent"].tolist() == [d.sent for d in daily]
    boxes = sendkit_async.to_arrow(mailboxes)
    assert boxes.column("email").to_pylist() == [m.email for m in mailboxes]
    assert boxes.column("bounce_rate").to_pylist() == [m.bounce_rate for m in mailboxes]
    summaries = sendkit_async.to_pandas(listed)
    assert list(summaries["id"]) == sim.campaign_ids


def test_importing_the_package_imports_no_frame_library() -> None:
    import subprocess

    code = (
        "import sys, sendkit_async, sendkit_async.cli._output; "
        "print(sorted(m for m in ('pandas', 'polars', 'pyarrow', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


async def cli(*args: str, base_url: str, prelude: str = "") -> tuple[int, str, str]:
    code = f"{prelude}from sendkit_async.cli import main; raise SystemExit(main({list(args)!r}))"
    env = {"SENDKIT_API_KEY": KEY, "SENDKIT_BASE_URL": base_url, "PYTHONPATH": str(ROOT)}
    return await run_python("-c", code, env=env, timeout=60)


async def _api_results(sim: Simulator, ids: list[str]) -> list[CampaignAnalytics]:
    async with client(sim) as c:
        return await c.gather_campaigns(ids)


async def test_parquet_file_reads_back_as_the_arrow_table(sim: Simulator, tmp_path: Path) -> None:
    ids = [sim.campaign_ids[2], MISSING, sim.campaign_ids[4], sim.campaign_ids[6]]
    target = tmp_path / "out.parquet"
    code, out, err = await cli(
        "analytics", *ids, "--format", "parquet", "-o", str(target), base_url=sim.base_url
    )
    assert code == 1  # one id failed: listed on stderr, the rest written
    assert f"failed: {MISSING}" in err
    assert out == ""
    written = pq.read_table(target)
    expected = sendkit_async.to_arrow(
        await _api_results(sim, [ids[0], ids[2], ids[3]]), errors="skip"
    )
    assert written.column_names == list(CSV_COLUMNS)
    for name in CSV_COLUMNS:
        assert written.schema.field(name).type == expected.schema.field(name).type, name
        assert written.column(name).to_pylist() == expected.column(name).to_pylist(), name


async def test_parquet_to_a_piped_stdout(sim: Simulator) -> None:
    import asyncio
    import io

    ids = sim.campaign_ids[:2]
    argv = ["analytics", *ids, "--format", "parquet"]
    code = f"from sendkit_async.cli import main; raise SystemExit(main({argv!r}))"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"SENDKIT_API_KEY": KEY, "SENDKIT_BASE_URL": sim.base_url, "PYTHONPATH": str(ROOT)},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err
    table = pq.read_table(io.BytesIO(out))
    assert table.column("id").to_pylist() == ids
    results = await _api_results(sim, ids)
    assert table.column("sent").to_pylist() == [a.stats.sent for a in results]


async def test_parquet_all_fills_total_leads_from_the_listing(
    sim: Simulator, tmp_path: Path
) -> None:
    target = tmp_path / "all.parquet"
    code, _, err = await cli(
        "analytics", "--all", "--format", "parquet", "-o", str(target), base_url=sim.base_url
    )
    assert code == 0, err
    written = pq.read_table(target)
    async with client(sim) as c:
        leads = {s.id: s.stats.total_leads if s.stats else None async for s in c.campaigns.iter()}
    assert sorted(written.column("id").to_pylist()) == sorted(leads)
    for campaign_id, total in zip(
        written.column("id").to_pylist(), written.column("total_leads").to_pylist(), strict=True
    ):
        assert total == leads[campaign_id]


async def test_parquet_without_pyarrow_is_a_usage_error(sim: Simulator, tmp_path: Path) -> None:
    target = tmp_path / "never.parquet"
    code, out, err = await cli(
        "analytics",
        sim.campaign_ids[0],
        "--format",
        "parquet",
        "-o",
        str(target),
        base_url=sim.base_url,
        prelude="import sys; sys.modules['pyarrow'] = None\n",
    )
    assert code == 2
    assert out == ""
    assert err.strip() == (
        "sendkit-async: error: --format parquet needs pyarrow, which is not installed: "
        "pip install 'sendkit-async[arrow]'"
    )
    assert not target.exists()  # refused before any file is created
