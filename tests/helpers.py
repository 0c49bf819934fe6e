"""Shared test helpers: a scriptable loopback server and the aioresponses shim."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
"""Copies of ../shared/fixtures (the documented example bodies), kept verbatim."""
SHARED_FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"
KEY = "sk_test_0123456789abcdef"
PLATFORM_KEY = "sk_user_0123456789abcdef"


def fixture(name: str) -> Any:
    """A documented example body from ../shared/fixtures."""
    return json.loads((FIXTURES / name).read_text())


class _StreamWriterStandIn:
    output_size = 0


class ShimClientResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds ClientResponse without ``stream_writer``, which
    aiohttp 3.14 requires (upstream: pnuckowski/aioresponses#289). Supplying a
    stand-in makes it work; pass this class as ``response_class=``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _StreamWriterStandIn())
        super().__init__(*args, **kwargs)


Reply = Callable[[web.Request], "asyncio.Future[web.StreamResponse] | Any"]


class Script:
    """A loopback server that answers from a queue of handlers and records requests."""

    def __init__(self) -> None:
        self.replies: list[Callable[[web.Request], Any]] = []
        self.default: Callable[[web.Request], Any] | None = None
        self.requests: list[web.Request] = []
        self.raw_paths: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.base_url = ""

    def add(self, *handlers: Callable[[web.Request], Any]) -> None:
        self.replies.extend(handlers)

    def count(self, path_prefix: str = "") -> int:
        return sum(1 for p in self.raw_paths if p.startswith(path_prefix))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        self.raw_paths.append(request.raw_path)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            handler = self.replies.pop(0) if self.replies else self.default
            if handler is None:
                return json_reply({"error": "Not Found", "message": "no script", "code": 404}, 404)
            result = handler(request)
            if asyncio.iscoroutine(result):
                result = await result
            assert isinstance(result, web.StreamResponse)
            return result
        finally:
            self.in_flight -= 1


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def reply(body: Any, status: int = 200, **headers: str) -> Callable[[web.Request], web.Response]:
    """A handler that answers ``body`` (JSON unless bytes/str) with ``status``."""
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}

    def handler(_: web.Request) -> web.Response:
        if isinstance(body, (bytes, str)):
            return web.Response(
                body=body if isinstance(body, bytes) else body.encode(), status=status, headers=hdrs
            )
        return json_reply(body, status, hdrs)

    return handler


@asynccontextmanager
async def scripted_server() -> AsyncIterator[Script]:
    """Start a :class:`Script` server on 127.0.0.1; always stopped."""
    script = Script()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", script.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    script.base_url = str(server.make_url("")).rstrip("/")
    try:
        yield script
    finally:
        await server.close()


class FakeClock:
    """A clock for the rate limiter: ``sleep`` advances ``now`` instead of waiting."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class VirtualClock:
    """Virtual time for several tasks: ``sleep`` parks the caller, and time jumps to the
    earliest wake-up once every runnable task (and loopback I/O) has had its turn.

    Unlike :class:`FakeClock`, concurrent sleeps overlap as they would on a real clock, so a
    client and a server (the simulator's ``clock``) can share it: no test waits for it.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    def time(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        if delay <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self.now + delay, next(self._seq), fut))
        if self._driver is None:
            self._driver = asyncio.create_task(self._drive())
        await fut

    async def _drive(self) -> None:
        while self._heap:
            for _ in range(30):  # let every runnable task settle before time moves
                await asyncio.sleep(0)
            while self._heap:
                when, _, fut = heapq.heappop(self._heap)
                if not fut.done():
                    self.now = max(self.now, when)
                    fut.set_result(None)
                    break
        self._driver = None


GUARD = 30.0
"""Seconds after which a wait for something that must happen fails the test: a guard
against hanging, never a bound the outcome depends on."""


async def wait_until(condition: Callable[[], bool], guard: float = GUARD) -> None:
    """Let the loop (and loopback I/O) run until ``condition`` holds; fails after ``guard``."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0)

    try:
        await asyncio.wait_for(poll(), guard)
    except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
        raise AssertionError("the condition never held") from None


async def run_python(*args: str, env: dict[str, str], timeout: float = 90) -> tuple[int, str, str]:
    """Run ``python ARGS`` with only the given SendKit variables; (exit status, stdout, stderr)."""
    import os
    import sys

    clean = {k: v for k, v in os.environ.items() if not k.startswith("SENDKIT_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**clean, **env},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@asynccontextmanager
async def uvicorn_server(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI ``app`` with uvicorn in this event loop on 127.0.0.1; yields its URL.

    The app's lifespan runs (startup before the yield, shutdown after); always stopped.
    """
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="on", log_level="warning", ws="none"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started or task.done())
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
