"""Three worker processes, two keys, one worker killed and one stopped mid-run: every id
ends in the sink exactly once.

The workers are real ``sendkit-async jobs worker`` processes of this checkout; the
simulator (one rate limit per key) runs in the test's own loop; Redis is the CI's or
one started for the session. Nothing here depends on how long anything takes: the
kill waits for the worker's own log to show a chunk in flight, with the worker
frozen (SIGSTOP) so the log is complete when it is read.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("arq")

from arq.connections import RedisSettings, create_pool
from arq.jobs import Job

from sendkit_async.jobs import enqueue_run, read_jsonl_run, wait_for_run
from sendkit_async.simulator import Simulator, SimulatorConfig, run_simulator
from tests.jobs_helpers import ids_by_row, new_key, redis_dump, unique

ROOT = Path(__file__).resolve().parent.parent


GUARD = 90.0  # seconds before a wait that must end fails the test (never an outcome)
LINE = re.compile(r"([→←↻]) (sendkit:\S+?):sendkit_fetch_chunk")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, signals")


class Worker:
    """One worker process and what its log says about the chunks it took."""

    def __init__(self, name: str, log: Path, env: dict[str, str], args: list[str]) -> None:
        self.name, self.log = name, log
        self._file = log.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - this checkout's own CLI
            [sys.executable, "-m", "sendkit_async", "jobs", "worker", *args],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self._file,
        )  # fmt: skip

    def chunks(self) -> tuple[set[str], set[str], set[str]]:
        """(started, finished, sent back to the queue) job ids, from the log so far."""
        seen: dict[str, set[str]] = {"→": set(), "←": set(), "↻": set()}
        for arrow, job_id in LINE.findall(self.log.read_text("utf-8", errors="replace")):
            seen[arrow].add(job_id)
        return seen["→"], seen["←"], seen["↻"]

    def in_flight(self) -> set[str]:
        started, finished, requeued = self.chunks()
        return started - finished - requeued

    def stopped(self) -> bool:
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "T"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._file.close()


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (20 ms apart) until it holds; fail after GUARD seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GUARD
    while not await asyncio.to_thread(condition):
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = SimulatorConfig(campaigns=3000, seed=11, rate_limit=250, fault_rate=0.01)
    async with run_simulator(config) as s:
        yield s


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    made: list[Worker] = []
    yield made
    for worker in made:
        worker.close()


async def test_three_workers_two_keys_a_kill_and_a_sigterm_lose_and_duplicate_nothing(
    sim: Simulator, jobs_redis: str, tmp_path: Path, workers: list[Worker]
) -> None:
    queue, run_id = unique("q"), unique("run")
    keys = {"alpha": new_key(), "beta": new_key()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDKIT_")}
    env.update(
        SENDKIT_KEY_ALPHA=keys["alpha"], SENDKIT_KEY_BETA=keys["beta"],
        SENDKIT_BASE_URL=sim.base_url, SENDKIT_REDIS_URL=jobs_redis,
        PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8",
    )  # fmt: skip
    out = tmp_path / "out"
    args = ["--sink", f"jsonl:{out}", "--queue", queue, "--poll-delay", "0.05",
            "--lease", "1.5", "--max-jobs", "2", "--concurrency", "8"]  # fmt: skip
    for n in range(3):
        workers.append(Worker(f"w{n}", tmp_path / f"w{n}.log", env, args))
    ids = sim.campaign_ids
    sources = {"alpha": ids[:1500], "beta": ids[1500:]}
    info = await enqueue_run(sources, redis_url=jobs_redis, queue_name=queue, run_id=run_id,
                             chunk_size=25)  # fmt: skip
    assert (info.chunks, info.ids) == (120, 3000)
    doomed, leaving, _ = workers  # the third one stays to the end

    # Kill: once the worker has finished a chunk and holds another, freeze it, read its
    # complete log, and SIGKILL it with the chunks it holds.
    killed_with: set[str] = set()
    while not killed_with:
        await until(lambda: bool(doomed.chunks()[1] and doomed.in_flight()), "w0 mid-chunk")
        doomed.proc.send_signal(signal.SIGSTOP)
        await until(doomed.stopped, "w0 stopped")
        killed_with = doomed.in_flight()
        if not killed_with:  # it finished in between: let it take the next one
            doomed.proc.send_signal(signal.SIGCONT)
    doomed.proc.kill()
    assert doomed.proc.wait(GUARD) == -signal.SIGKILL

    # SIGTERM: a worker holding a chunk finishes it or sends it back to the queue.
    await until(lambda: bool(leaving.in_flight()), "w1 mid-chunk")
    leaving.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(leaving.proc.wait, GUARD) == 0
    started, finished, requeued = leaving.chunks()
    assert started <= finished | requeued

    state = await wait_for_run(run_id, timeout=GUARD, redis_url=jobs_redis)
    assert (state.chunks, state.done) == (120, 120)
    assert state.succeeded + state.failed == 3000

    rows = list(read_jsonl_run(out, run_id))
    counts = ids_by_row(rows)
    assert len(rows) == 3000
    assert set(counts.values()) == {1}
    assert set(counts) == {(ref, i) for ref, chunk in sources.items() for i in chunk}
    assert all(r["analytics"]["campaign"]["id"] == r["id"] for r in rows if r["ok"])
    assert sum(r["ok"] for r in rows) == state.succeeded

    # The chunks the killed worker held were run again, by another worker, to the end.
    pool = await create_pool(RedisSettings.from_dsn(jobs_redis), default_queue_name=queue)
    try:
        for job_id in killed_with:
            result = await Job(job_id, pool, _queue_name=queue).result_info()
            assert result is not None and result.success, job_id
            assert result.job_try >= 2
    finally:
        await pool.aclose()
    assert killed_with.isdisjoint(doomed.chunks()[1])

    # Each key was limited on its own by the simulator, and neither key is in Redis.
    assert len(sim.stats.by_key) == 2
    dump = b"\n".join(await redis_dump(jobs_redis))
    assert run_id.encode() in dump
    for key in keys.values():
        assert key.encode() not in dump


async def test_sigterm_with_drain_lets_the_running_chunk_finish(
    jobs_redis: str, tmp_path: Path, workers: list[Worker]
) -> None:
    queue, run_id = unique("q"), unique("run")
    key = new_key()
    config = SimulatorConfig(campaigns=20, seed=2, latency_ms=150)
    async with run_simulator(config) as slow:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENDKIT_")}
        env.update(
            SENDKIT_KEY_SOLO=key, SENDKIT_BASE_URL=slow.base_url, SENDKIT_REDIS_URL=jobs_redis,
            PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8",
        )  # fmt: skip
        out = tmp_path / "out"
        args = ["--sink", f"jsonl:{out}", "--queue", queue, "--poll-delay", "0.05",
                "--concurrency", "2", "--drain", "60"]  # fmt: skip
        worker = Worker("solo", tmp_path / "solo.log", env, args)
        workers.append(worker)
        # 20 ids, 2 at a time, 150 ms each: the chunk runs for about 1.5 s.
        await enqueue_run({"solo": slow.campaign_ids}, redis_url=jobs_redis, queue_name=queue,
                          run_id=run_id, chunk_size=20)  # fmt: skip
        await until(lambda: bool(worker.in_flight()), "the chunk started")
        worker.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.proc.wait, GUARD) == 0
    started, finished, requeued = worker.chunks()
    assert started == finished
    assert len(started) == 1
    assert not requeued
    log = worker.log.read_text("utf-8")
    assert log.index("shutdown on SIGTERM") < log.index("←")  # it finished after the signal
    rows = list(read_jsonl_run(out, run_id))
    assert sorted(r["id"] for r in rows) == sorted(slow.campaign_ids)
    assert all(r["ok"] for r in rows)
