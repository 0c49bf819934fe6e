"""Servers for the blocking client's tests: each on an event loop in a thread of its own.

A blocking call holds its thread, so the server it talks to must not share that
thread's loop (an async test's own loop is blocked while ``SendKit`` waits).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
WAIT = 60.0  # bound of every wait for the server thread (it answers in milliseconds)


class LoopThread:
    """An event loop running in a daemon thread until :meth:`close`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)

    def soon(self, fn: Callable[[], object]) -> None:
        self.loop.call_soon_threadsafe(fn)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT)
        self.loop.close()


@contextmanager
def served(manager: Callable[[], AbstractAsyncContextManager[T]]) -> Iterator[tuple[T, LoopThread]]:
    """Enter the async context manager ``manager()`` on a :class:`LoopThread`; exit it after."""
    thread = LoopThread()
    try:
        cm = thread.run(_make(manager))
        value = thread.run(cm.__aenter__())
        try:
            yield value, thread
        finally:
            thread.run(cm.__aexit__(None, None, None))
    finally:
        thread.close()


async def _make(
    manager: Callable[[], AbstractAsyncContextManager[T]],
) -> AbstractAsyncContextManager[T]:
    return manager()  # made in the server's loop, where it will run


def run_script(code: str, env: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    """``python OPTIONS -c CODE`` with this checkout first on the path; bounded."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SENDKIT_")}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), clean.get("PYTHONPATH")]))
    return subprocess.run(  # noqa: S603 - our own interpreter, our own code
        [sys.executable, *options, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=ROOT,
    )
