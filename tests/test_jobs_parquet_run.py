"""A run through the worker code path (in this process) into a ParquetSink, read back with
pyarrow: every id of every key exactly once, failures recorded as rows."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.importorskip("arq")
pytest.importorskip("pyarrow")

import pyarrow.parquet as pq
from arq.worker import create_worker

from sendkit_async.jobs import ParquetSink, enqueue_run, wait_for_run, worker_settings
from sendkit_async.jobs._worker import close_worker
from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator
from tests.jobs_helpers import new_key, unique


def _parquet_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet"))


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(SimulatorConfig(campaigns=60, seed=5, rate_limit=500)) as s:
        yield s


async def test_a_run_into_parquet_has_every_id_exactly_once(
    tmp_path: Path, sim: Simulator, jobs_redis: str
) -> None:
    queue, run_id = unique("q"), unique("run")
    keys = {"acme": new_key(), "globex": new_key()}
    missing = "ffffffffffffffffffffffff"
    acme = [*sim.campaign_ids[:25], missing]
    info = await enqueue_run(
        {"acme": acme, "globex": None}, redis_url=jobs_redis, queue_name=queue, run_id=run_id,
        chunk_size=10, keys=keys, base_url=sim.base_url,
    )  # fmt: skip
    assert (info.ids, info.chunks) == (26 + 60, 3 + 6)

    settings = worker_settings(
        sink=ParquetSink(tmp_path), keys=keys, redis_url=jobs_redis, base_url=sim.base_url,
        queue_name=queue,
    )  # fmt: skip
    worker = create_worker(settings, burst=True, handle_signals=False, poll_delay=0.01)
    try:
        await worker.async_run()
    finally:
        await close_worker(worker)

    state = await wait_for_run(run_id, timeout=10, redis_url=jobs_redis)
    assert (state.done, state.succeeded, state.failed) == (9, 85, 1)
    assert _parquet_files(tmp_path / run_id) == [
        *(f"acme/chunk-{c:06d}.parquet" for c in range(3)),
        *(f"globex/chunk-{c:06d}.parquet" for c in range(6)),
    ]
    rows = pq.read_table(tmp_path / run_id).to_pylist()
    counts = Counter((r["key_ref"], r["id"]) for r in rows)
    assert set(counts.values()) == {1}
    assert set(counts) == {("acme", i) for i in acme} | {("globex", i) for i in sim.campaign_ids}
    assert {r["run_id"] for r in rows} == {run_id}
    bad = [(r["id"], r["ok"], r["error"], r["status"]) for r in rows if not r["ok"]]
    assert bad == [(missing, False, "NotFoundError", 404)]
    good = next(r for r in rows if r["ok"])
    assert json.loads(good["analytics"])["campaign"]["id"] == good["id"]
    assert isinstance(good["sent"], int)
