"""A real redis-server for the shared rate-limit tests: the CI's, or one we start and stop."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

ENV_URL = "SENDKIT_TEST_REDIS_URL"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` on loopback, no persistence; ``stop()``/``start()`` keep the port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + 10
        while not _answers(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Start a redis-server for the ``with`` body; always stopped."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def have_redis_server() -> bool:
    return shutil.which("redis-server") is not None


def require_redis_server() -> None:
    """Skip without the binary; in CI (``CI=true``) fail instead: there it must run."""
    if have_redis_server():
        return
    reason = f"no redis-server binary and {ENV_URL} is not set"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: CI must run the Redis tests")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``$SENDKIT_TEST_REDIS_URL``, else a redis-server started for this session."""
    url = os.environ.get(ENV_URL)
    if url:
        yield url
        return
    require_redis_server()
    with redis_server() as server:
        yield server.url


async def hgetall(client: Any, name: str) -> dict[str, str]:
    """``HGETALL`` typed for the tests (redis-py's stubs say "awaitable or not" across versions)."""
    value: dict[str, str] = await client.hgetall(name)
    return value
