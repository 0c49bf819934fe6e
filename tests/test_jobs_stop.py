"""A stopped worker ends even when its first cancellation is swallowed (redis-py's bounded
send on Python 3.11 returns instead of raising when the cancellation lands as it completes)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

pytest.importorskip("arq")

from arq.worker import create_worker

from sendkit_async.jobs import JsonLinesSink, run_worker, worker_settings
from sendkit_async.jobs import _stop as stop_module
from sendkit_async.jobs import _worker as worker_module
from sendkit_async.jobs._stop import Insist
from sendkit_async.jobs._task import on_shutdown, on_startup
from sendkit_async.jobs._worker import until_stopped
from tests.jobs_helpers import unique

ROOT = Path(__file__).resolve().parent.parent
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


# arq's own `arq` command builds the Worker itself: our on_startup guards the main task.

needs_cancelling = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="Task.cancelling() is Python 3.11+"
)


@needs_cancelling
async def test_on_startup_makes_a_main_task_that_swallows_its_stop_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stop_module, "RECANCEL", 0.001)
    settings = worker_settings(sink=JsonLinesSink(tmp_path), redis_url="redis://127.0.0.1:1/0")
    ctx = {**settings["ctx"], "redis": settings["redis_pool"]}  # never used: no chunk runs
    started, swallowed = asyncio.Event(), asyncio.Event()

    async def main() -> None:  # arq's Worker.main, as run by its own command
        await on_startup(ctx)
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()  # as redis-py's bounded send can on Python 3.11
        while True:  # arq's poll loop goes on
            await asyncio.sleep(0)

    task = asyncio.create_task(main())
    try:
        await asyncio.wait_for(started.wait(), GUARD)
        task.cancel()  # arq's handle_sig, once
        await asyncio.wait_for(swallowed.wait(), GUARD)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, GUARD)
    finally:
        task.cancel()
        await on_shutdown(ctx)
        await settings["redis_pool"].aclose()


class _ScriptedTask:
    """A main task whose pending cancellation requests follow a script."""

    def __init__(self, pending: list[int]) -> None:
        self.pending = pending
        self.cancels = 0
        self.ended = False

    def done(self) -> bool:
        return self.ended or not self.pending

    def cancel(self) -> bool:
        self.cancels += 1
        return True

    def cancelling(self) -> int:
        return self.pending.pop(0)


class _Timers:
    def __init__(self) -> None:
        self.scheduled: list[Callable[[], None]] = []

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        assert delay == stop_module.RECANCEL
        self.scheduled.append(callback)

    def run(self, times: int) -> None:
        for _ in range(times):
            self.scheduled.pop(0)()


def test_a_request_withdrawn_before_the_next_check_is_not_a_stop() -> None:
    # asyncio.timeout (redis-py's read bound) cancels the task and withdraws the request
    # (uncancel) as it expires: a check landing in between sees one request, the next none.
    task = _ScriptedTask([0, 1, 0, 1, 0, 0])
    timers = _Timers()
    Insist(task, cast(Any, timers), stop_module.RECANCEL).start()
    timers.run(6)
    assert task.cancels == 0
    assert len(timers.scheduled) == 1  # still watching


def test_a_request_still_pending_at_the_next_check_cancels_again_until_done() -> None:
    task = _ScriptedTask([0, 1, 1, 2, 3])
    timers = _Timers()
    Insist(task, cast(Any, timers), stop_module.RECANCEL).start()
    timers.run(5)
    assert task.cancels == 3  # at the second, third and fourth sight of a pending request
    task.ended = True
    timers.run(1)
    assert timers.scheduled == []  # the task has ended: no more checks


@needs_cancelling
async def test_arqs_own_command_stops_on_sigterm_though_the_first_cancel_is_swallowed(
    jobs_redis: str, tmp_path: Path
) -> None:
    (tmp_path / "workers.py").write_text(
        "import asyncio, pathlib\n"
        "from sendkit_async.jobs import JsonLinesSink, worker_settings\n\n"
        f"settings = worker_settings(sink=JsonLinesSink('out'), redis_url={jobs_redis!r},\n"
        f"                           queue_name={unique('q')!r}, poll_delay=0.05)\n"
        "ours = settings['on_startup']\n\n"
        "async def on_startup(ctx):\n"
        "    await ours(ctx)\n"
        "    pathlib.Path('started').touch()\n"
        "    try:\n"
        "        await asyncio.Event().wait()\n"
        "    except asyncio.CancelledError:  # as redis-py's bounded send can on 3.11\n"
        "        pathlib.Path('swallowed').touch()\n\n"
        "settings['on_startup'] = on_startup\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SENDKIT_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error", "-m", "arq", "workers.settings",
        cwd=tmp_path, env={**clean, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:

        async def started() -> None:
            while not (tmp_path / "started").exists():
                assert proc.returncode is None
                await asyncio.sleep(0.05)

        await asyncio.wait_for(started(), GUARD)
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), GUARD)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert (tmp_path / "swallowed").exists()
    assert proc.returncode == 0, err.decode()
    assert "shutdown on SIGTERM" in (out + err).decode()
