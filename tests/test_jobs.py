"""The job queue in one process: key references, sinks, the chunk task, enqueue and status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("arq")

from arq.worker import Retry, create_worker
from redis.asyncio import Redis

from sendkit_async import ConfigurationError, NotFoundError
from sendkit_async.jobs import (
    CallbackSink,
    ChunkOutput,
    JsonLinesSink,
    KeyResolver,
    ParquetSink,
    Row,
    enqueue_run,
    read_jsonl_run,
    run_status,
    wait_for_run,
    worker_settings,
)
from sendkit_async.jobs._task import CONFIG_KEY, fetch_chunk, on_shutdown, on_startup
from sendkit_async.jobs._worker import close_worker
from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator
from tests.jobs_helpers import ids_by_row, new_key, redis_dump, unique

ROOT = Path(__file__).resolve().parent.parent


# --- key references ---------------------------------------------------------------------


def test_a_reference_resolves_from_the_mapping_then_the_environment() -> None:
    resolver = KeyResolver({"acme": "sk_from_mapping"}, environ={"SENDKIT_KEY_GLOBEX_EU": "sk_env"})
    assert resolver.key("acme") == "sk_from_mapping"
    assert resolver.key("globex-eu") == "sk_env"
    assert "sk_from_mapping" not in repr(resolver)
    assert "acme" in repr(resolver)


def test_a_missing_or_malformed_reference_is_a_configuration_error() -> None:
    resolver = KeyResolver(environ={})
    with pytest.raises(ConfigurationError, match="SENDKIT_KEY_NOPE"):
        resolver.key("nope")
    for bad in ("../etc", "a/b", "", "x" * 65, " acme"):
        with pytest.raises(ConfigurationError, match="key reference"):
            resolver.key(bad)


def test_a_platform_keys_workspace_comes_from_the_mapping_or_environment() -> None:
    resolver = KeyResolver(workspaces={"a": "ws_a"}, environ={"SENDKIT_WORKSPACE_ID_B": "ws_b"})
    assert (resolver.workspace_id("a"), resolver.workspace_id("b")) == ("ws_a", "ws_b")
    assert resolver.workspace_id("c") is None


def test_importing_sendkit_async_does_not_import_arq() -> None:
    code = "import sys, sendkit_async, sendkit_async.cli; print('arq' in sys.modules)"
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# --- sinks --------------------------------------------------------------------------------


def _output(chunk: int, ids: list[str], *, failed: str | None = None) -> ChunkOutput:
    rows = tuple(
        Row.failed(i, NotFoundError("gone", status=404)) if i == failed else Row(i) for i in ids
    )
    return ChunkOutput("run1", "acme", chunk, rows)


async def test_jsonl_sink_writes_one_file_per_chunk_and_replaces_a_rewrite(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path)
    await sink.write(_output(0, ["a", "b"], failed="b"))
    await sink.write(_output(1, ["c"]))
    await sink.write(_output(0, ["a", "b"]))  # the same chunk again, after a crash
    rows = list(read_jsonl_run(tmp_path, "run1"))
    assert [(r["id"], r["ok"]) for r in rows] == [("a", True), ("b", True), ("c", True)]
    files = sorted(p.name for p in (tmp_path / "run1" / "acme").iterdir())
    assert files == ["chunk-000000.jsonl", "chunk-000001.jsonl"]  # no temporary left behind


async def test_jsonl_rows_record_failures_with_type_message_and_status(tmp_path: Path) -> None:
    await JsonLinesSink(tmp_path).write(_output(0, ["a", "b"], failed="b"))
    row = list(read_jsonl_run(tmp_path, "run1"))[1]
    assert row["ok"] is False
    assert row["error"] == {"type": "NotFoundError", "message": "HTTP 404: gone", "status": 404}
    assert (row["run_id"], row["key_ref"], row["chunk"]) == ("run1", "acme", 0)


async def test_parquet_sink_reads_back_as_one_table(tmp_path: Path, sim: Simulator) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from sendkit_async import AsyncSendKit

    async with AsyncSendKit("sk_test_parquet", base_url=sim.base_url) as client:
        got = await client.analytics.campaign(sim.campaign_ids[0])
    sink = ParquetSink(tmp_path)
    rows = (Row(got.id, analytics=got), Row.failed("x", NotFoundError("gone", status=404)))
    await sink.write(ChunkOutput("run1", "acme", 0, rows))
    await sink.write(ChunkOutput("run1", "acme", 0, rows))  # replaced, not appended
    table = pq.read_table(tmp_path / "run1").to_pylist()
    assert [(r["id"], r["ok"], r["error"]) for r in table] == [
        (got.id, True, None),
        ("x", False, "NotFoundError"),
    ]
    assert table[0]["sent"] == got.stats.sent
    assert json.loads(table[0]["analytics"])["campaign"]["id"] == got.id


async def test_callback_sink_takes_plain_and_async_callbacks() -> None:
    seen: list[int] = []

    async def later(output: ChunkOutput) -> None:
        seen.append(output.chunk * 10)

    await CallbackSink(lambda output: seen.append(output.chunk)).write(_output(1, ["a"]))
    await CallbackSink(later).write(_output(2, ["a"]))
    assert seen == [1, 20]


# --- the chunk task, enqueue and status, with a worker in this process ----------------------


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(SimulatorConfig(campaigns=120, seed=3, rate_limit=500)) as s:
        yield s


async def _run_worker_until_empty(settings: dict[str, Any]) -> None:
    worker = create_worker(settings, burst=True, handle_signals=False, poll_delay=0.01)
    try:
        await worker.async_run()
    finally:
        await close_worker(worker)


async def test_a_run_fetches_every_id_once_and_records_failures(
    tmp_path: Path, sim: Simulator, jobs_redis: str
) -> None:
    queue, run_id = unique("q"), unique("run")
    keys = {"acme": new_key(), "globex": new_key()}
    missing = "ffffffffffffffffffffffff"
    acme = [*sim.campaign_ids[:50], missing]
    sources: dict[str, list[str] | None] = {"acme": acme, "globex": None}  # None: list it
    info = await enqueue_run(
        sources, redis_url=jobs_redis, queue_name=queue, run_id=run_id, chunk_size=20,
        keys=keys, base_url=sim.base_url,
    )  # fmt: skip
    assert (info.ids, info.chunks) == (51 + 120, 3 + 6)
    assert dict(info.ids_by_key) == {"acme": 51, "globex": 120}
    before = await run_status(run_id, redis_url=jobs_redis)
    assert (before.chunks, before.done, before.complete) == (9, 0, False)

    settings = worker_settings(
        sink=JsonLinesSink(tmp_path), keys=keys, redis_url=jobs_redis, base_url=sim.base_url,
        queue_name=queue,
    )  # fmt: skip
    await _run_worker_until_empty(settings)

    state = await wait_for_run(run_id, timeout=10, redis_url=jobs_redis)
    assert (state.done, state.succeeded, state.failed) == (9, 170, 1)
    rows = list(read_jsonl_run(tmp_path, run_id))
    counts = ids_by_row(rows)
    assert set(counts.values()) == {1}
    assert set(counts) == {("acme", i) for i in acme} | {("globex", i) for i in sim.campaign_ids}
    bad = [r for r in rows if not r["ok"]]
    assert [(r["id"], r["error"]["type"], r["error"]["status"]) for r in bad] == [
        (missing, "NotFoundError", 404)
    ]
    good = next(r for r in rows if r["ok"])
    assert good["analytics"]["campaign"]["id"] == good["id"]
    # The keys never reached Redis in clear: not in a job, a result, or the shared budget.
    dump = b"\n".join(await redis_dump(jobs_redis))
    for key in keys.values():
        assert key.encode() not in dump
    assert run_id.encode() in dump  # the scan did see this run's jobs and bookkeeping


async def test_enqueueing_the_same_run_again_adds_nothing(jobs_redis: str) -> None:
    queue, run_id = unique("q"), unique("run")
    ids = [f"{i:024x}" for i in range(25)]
    first = await enqueue_run({"a": ids}, redis_url=jobs_redis, queue_name=queue, run_id=run_id,
                              chunk_size=10)  # fmt: skip
    again = await enqueue_run({"a": ids}, redis_url=jobs_redis, queue_name=queue, run_id=run_id,
                              chunk_size=10)  # fmt: skip
    assert (first.chunks, first.already_queued) == (3, 0)
    assert (again.chunks, again.already_queued) == (3, 3)
    async with Redis.from_url(jobs_redis) as redis:
        assert await redis.zcard(queue) == 3


async def test_bad_arguments_are_configuration_errors(jobs_redis: str) -> None:
    with pytest.raises(ConfigurationError, match="chunk_size"):
        await enqueue_run({"a": ["x"]}, redis_url=jobs_redis, chunk_size=0)
    with pytest.raises(ConfigurationError, match="run id"):
        await enqueue_run({"a": ["x"]}, redis_url=jobs_redis, run_id="../x")
    with pytest.raises(ConfigurationError, match="key reference"):
        await enqueue_run({"a b": ["x"]}, redis_url=jobs_redis)
    with pytest.raises(ConfigurationError, match="SENDKIT_KEY_NOBODY"):
        await enqueue_run(["nobody"], redis_url=jobs_redis, keys={})


async def _call_task(
    settings: dict[str, Any], jobs_redis: str, spec: dict[str, Any], job_try: int
) -> dict[str, Any]:
    ctx: dict[str, Any] = {CONFIG_KEY: settings["ctx"][CONFIG_KEY], "job_try": job_try,
                           "job_id": unique("job")}  # fmt: skip
    async with Redis.from_url(jobs_redis) as redis:
        ctx["redis"] = redis
        await on_startup(ctx)
        try:
            return await fetch_chunk(ctx, spec)
        finally:
            await on_shutdown(ctx)


async def test_a_chunk_past_its_tries_records_every_id_as_abandoned(
    tmp_path: Path, jobs_redis: str
) -> None:
    settings = worker_settings(sink=JsonLinesSink(tmp_path), keys={}, redis_url=jobs_redis,
                               max_tries=3)  # fmt: skip
    spec = {"run_id": "r", "key_ref": "acme", "chunk": 4, "ids": ["a", "b", "a"]}
    result = await _call_task(settings, jobs_redis, spec, job_try=4)
    assert (result["succeeded"], result["failed"]) == (0, 2)
    rows = list(read_jsonl_run(tmp_path, "r"))
    assert [(r["id"], r["error"]["type"]) for r in rows] == [
        ("a", "ChunkAbandonedError"),
        ("b", "ChunkAbandonedError"),
    ]
    assert "3 tries" in rows[0]["error"]["message"]


async def test_a_reference_this_worker_cannot_resolve_fails_its_ids(
    tmp_path: Path, jobs_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENDKIT_KEY_ACME", raising=False)
    settings = worker_settings(sink=JsonLinesSink(tmp_path), keys={}, redis_url=jobs_redis)
    spec = {"run_id": "r", "key_ref": "acme", "chunk": 0, "ids": ["a"]}
    await _call_task(settings, jobs_redis, spec, job_try=1)
    (row,) = read_jsonl_run(tmp_path, "r")
    assert row["error"]["type"] == "ConfigurationError"
    assert "SENDKIT_KEY_ACME" in row["error"]["message"]


async def test_a_sink_that_fails_makes_the_chunk_retry(jobs_redis: str, sim: Simulator) -> None:
    def broken(output: ChunkOutput) -> None:
        raise OSError("disk full")

    settings = worker_settings(sink=CallbackSink(broken), keys={"acme": new_key()},
                               redis_url=jobs_redis, base_url=sim.base_url)  # fmt: skip
    spec = {"run_id": "r", "key_ref": "acme", "chunk": 0, "ids": sim.campaign_ids[:2]}
    with pytest.raises(Retry):
        await _call_task(settings, jobs_redis, spec, job_try=1)


async def test_a_chunk_out_of_time_retries_then_records_the_rest_as_timeouts(
    tmp_path: Path, jobs_redis: str
) -> None:
    async with run_simulator(SimulatorConfig(campaigns=5, latency_ms=2000)) as slow:
        settings = worker_settings(
            sink=JsonLinesSink(tmp_path), keys={"acme": new_key()}, redis_url=jobs_redis,
            base_url=slow.base_url, chunk_timeout=0.05, max_tries=2,
        )  # fmt: skip
        spec = {"run_id": "r", "key_ref": "acme", "chunk": 0, "ids": slow.campaign_ids[:2]}
        with pytest.raises(Retry):
            await _call_task(settings, jobs_redis, spec, job_try=1)
        result = await _call_task(settings, jobs_redis, spec, job_try=2)
    assert (result["succeeded"], result["failed"]) == (0, 2)
    assert {r["error"]["type"] for r in read_jsonl_run(tmp_path, "r")} == {"APITimeoutError"}


# --- the command line -----------------------------------------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SENDKIT_")}
    return subprocess.run(  # noqa: S603 - this checkout's own CLI
        [sys.executable, "-m", "sendkit_async", *args],
        cwd=ROOT, env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_cli_enqueues_an_ids_file_and_reports_the_runs_status(
    tmp_path: Path, jobs_redis: str
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"{i:024x}\n" for i in range(7)) + "\n")
    queue, run_id = unique("q"), unique("run")
    common = ["--redis-url", jobs_redis, "--queue", queue]
    done = _cli("jobs", "enqueue", "--ids-file", str(ids), "--key-ref", "acme",
                "--chunk-size", "3", "--run-id", run_id, *common)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"run_id": run_id, "chunks": 3, "ids": 7,
                                       "ids_by_key": {"acme": 7}, "already_queued": 0}  # fmt: skip
    status = _cli("jobs", "status", run_id, "--redis-url", jobs_redis)
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert (state["run_id"], state["chunks"], state["done"], state["complete"]) == (
        run_id,
        3,
        0,
        False,
    )


def test_cli_usage_errors_exit_2_without_touching_redis() -> None:
    bad_sink = _cli("jobs", "worker", "--sink", "csv:out", "--redis-url", "redis://127.0.0.1:1/0")
    assert bad_sink.returncode == 2
    assert "jsonl:DIR or parquet:DIR" in bad_sink.stderr
    two_keys = _cli("jobs", "enqueue", "--ids-file", "x", "--key-ref", "a", "--key-ref", "b",
                    "--redis-url", "redis://127.0.0.1:1/0")  # fmt: skip
    assert two_keys.returncode == 2
    assert "exactly one --key-ref" in two_keys.stderr


async def test_a_rejected_key_records_every_id_of_its_chunk(
    tmp_path: Path, jobs_redis: str
) -> None:
    async with run_simulator(SimulatorConfig(campaigns=30, api_keys=("sk_only_this_one",))) as s:
        settings = worker_settings(sink=JsonLinesSink(tmp_path), keys={"acme": new_key()},
                                   redis_url=jobs_redis, base_url=s.base_url)  # fmt: skip
        spec = {"run_id": "r", "key_ref": "acme", "chunk": 0, "ids": s.campaign_ids}
        result = await _call_task(settings, jobs_redis, spec, job_try=1)
    assert (result["succeeded"], result["failed"]) == (0, 30)
    rows = list(read_jsonl_run(tmp_path, "r"))
    assert [r["id"] for r in rows] == s.campaign_ids
    assert {(r["error"]["type"], r["error"]["status"]) for r in rows} == {
        ("AuthenticationError", 401)
    }
