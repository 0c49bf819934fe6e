"""A stopped worker ends even when its first cancellation is swallowed (redis-py's bounded
send on Python 3.11 returns instead of raising when the cancellation lands as it completes)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("arq")

from arq.worker import create_worker

from sendkit_async.jobs import JsonLinesSink, run_worker, worker_settings
from sendkit_async.jobs import _worker as worker_module
from sendkit_async.jobs._worker import until_stopped
from tests.jobs_helpers import unique

GUARD = 60.0  # seconds before a wait that must end fails the test (never an outcome)


async def test_a_main_task_that_swallows_its_cancellation_is_cancelled_again() -> None:
    swallowed = asyncio.Event()

    async def main() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()  # as redis-py's bounded send can on Python 3.11
        await asyncio.Event().wait()  # arq's poll loop goes on

    task = asyncio.create_task(main())
    await asyncio.sleep(0)
    worker: Any = SimpleNamespace(main_task=task)
    task.cancel()  # arq's handle_sig
    until_stopped(worker, asyncio.get_running_loop())(signal.SIGTERM)  # then its on_stop
    await asyncio.wait_for(swallowed.wait(), GUARD)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, GUARD)


def test_run_worker_installs_the_stop_that_insists(
    jobs_redis: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Any] = []

    def capture(*args: Any, **kwargs: Any) -> Any:
        made.append(create_worker(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(worker_module, "create_worker", capture)
    settings = worker_settings(sink=JsonLinesSink(tmp_path), redis_url=jobs_redis,
                               queue_name=unique("q"), burst=True)  # fmt: skip
    settings["handle_signals"] = False
    assert run_worker(settings) == 0  # an empty queue in burst mode: it ends at once
    (worker,) = made
    assert worker.on_stop.__qualname__ == until_stopped(worker, None).__qualname__  # type: ignore[arg-type]
