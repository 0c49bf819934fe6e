"""Every Redis wait of the job queue is bounded: a Redis that accepts the connection and
never answers ends in QueueUnavailableError (the bound shortened by ``redis_timeout``)."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

pytest.importorskip("arq")

from sendkit_async import SendKitError
from sendkit_async.jobs import (
    REDIS_TIMEOUT,
    JsonLinesSink,
    QueueUnavailableError,
    enqueue_run,
    run_status,
    run_worker,
    wait_for_run,
    worker_settings,
)
from sendkit_async.jobs._redis import QueueClient

ROOT = Path(__file__).resolve().parent.parent
SHORT = 0.05  # the bound, shortened for the tests (no test measures it)


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A loopback port whose kernel accepts connections that nobody ever answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        port = server.getsockname()[1]
        yield f"redis://:s3cret@127.0.0.1:{port}/0"
    gc.collect()  # a socket left open by the client would warn here (warnings are errors)


@pytest.fixture
async def hangs_after_hello() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A Redis that answers the connection's PING and CLIENT commands, then never again:
    the bound must cover every call, not only the connection check. Yields the URL and
    the names of the commands it received."""
    seen: list[bytes] = []
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while line := await reader.readline():  # RESP: *<n>, then n times $<len> <bytes>
            args = []
            for _ in range(int(line[1:])):
                size = int((await reader.readline())[1:])
                args.append((await reader.readexactly(size + 2))[:-2])
            seen.append(args[0].upper())
            if args[0].upper() == b"PING":
                writer.write(b"+PONG\r\n")
            elif args[0].upper() == b"CLIENT":
                writer.write(b"+OK\r\n")
            # anything else: silence

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0", seen
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_redis_silent_after_the_ping_bounds_enqueue_and_status(
    hangs_after_hello: tuple[str, list[bytes]],
) -> None:
    url, seen = hangs_after_hello
    with pytest.raises(QueueUnavailableError, match=rf"did not answer within {SHORT:g} s"):
        await enqueue_run({"acme": ["a" * 24]}, redis_url=url, redis_timeout=SHORT)
    assert seen[-2:] == [b"PING", b"HSET"]  # connected fine, then the run's first write hung
    with pytest.raises(QueueUnavailableError, match=rf"did not answer within {SHORT:g} s"):
        await run_status("run1", redis_url=url, redis_timeout=SHORT)
    assert seen[-2:] == [b"PING", b"HGET"]


def _check(error: QueueUnavailableError, url: str) -> None:
    assert isinstance(error, SendKitError)
    port = url.rsplit(":", 1)[1].split("/")[0]
    assert str(error) == f"Redis at 127.0.0.1:{port} did not answer within {SHORT:g} s"
    assert "s3cret" not in str(error)  # the URL's password never reaches the message


async def test_enqueue_against_a_silent_redis_is_queue_unavailable(silent_redis: str) -> None:
    with pytest.raises(QueueUnavailableError) as caught:
        await enqueue_run({"acme": ["a" * 24]}, redis_url=silent_redis, redis_timeout=SHORT)
    _check(caught.value, silent_redis)


async def test_status_and_wait_against_a_silent_redis_are_queue_unavailable(
    silent_redis: str,
) -> None:
    with pytest.raises(QueueUnavailableError) as caught:
        await run_status("run1", redis_url=silent_redis, redis_timeout=SHORT)
    _check(caught.value, silent_redis)
    with pytest.raises(QueueUnavailableError) as caught:
        await wait_for_run("run1", timeout=3600, redis_url=silent_redis, redis_timeout=SHORT)
    _check(caught.value, silent_redis)


def test_a_worker_against_a_silent_redis_is_queue_unavailable(
    silent_redis: str, tmp_path: object
) -> None:
    settings = worker_settings(
        sink=JsonLinesSink(str(tmp_path)), redis_url=silent_redis, redis_timeout=SHORT
    )
    with pytest.raises(QueueUnavailableError) as caught:
        run_worker(settings)
    _check(caught.value, silent_redis)


async def test_a_refused_connection_is_queue_unavailable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    with pytest.raises(QueueUnavailableError, match=rf"Redis at 127\.0\.0\.1:{port} could not"):
        await run_status("run1", redis_url=f"redis://127.0.0.1:{port}/0")


def test_the_default_bound_and_bad_values() -> None:
    assert REDIS_TIMEOUT == 10.0
    from sendkit_async import ConfigurationError

    with pytest.raises(ConfigurationError, match="redis_timeout"):
        worker_settings(sink=JsonLinesSink("out"), redis_timeout=0)


async def test_a_bad_redis_timeout_is_a_configuration_error() -> None:
    from sendkit_async import ConfigurationError

    with pytest.raises(ConfigurationError, match="redis_timeout must be a number > 0"):
        await run_status("run1", redis_timeout=-1)


async def test_a_worker_whose_redis_goes_silent_after_the_ping_stops(
    hangs_after_hello: tuple[str, list[bytes]], tmp_path: object
) -> None:
    url, seen = hangs_after_hello
    settings = worker_settings(
        sink=JsonLinesSink(str(tmp_path)), redis_url=url, redis_timeout=SHORT
    )
    settings["handle_signals"] = False  # in a thread here: signals need the main one
    with pytest.raises(QueueUnavailableError, match=rf"did not answer within {SHORT:g} s"):
        await asyncio.to_thread(run_worker, settings)
    hello = seen.index(b"PING")  # after redis-py's CLIENT SETINFO
    # Connected; arq's server-info pipeline hung, then so did the shutdown's DEL of the
    # health-check key (on a fresh connection): each ended by the bound.
    after = [name for name in seen[hello + 1 :] if name != b"CLIENT"]
    assert after == [b"INFO", b"INFO", b"INFO", b"DBSIZE", b"DEL"]


def test_the_jobs_command_against_a_silent_redis_fails_with_one_line(silent_redis: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SENDKIT_")}
    done = subprocess.run(  # noqa: S603 - this checkout's own CLI
        [sys.executable, "-m", "sendkit_async", "jobs", "status", "run1",
         "--redis-url", silent_redis, "--redis-timeout", str(SHORT)],
        cwd=ROOT, env={**clean, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    port = silent_redis.rsplit(":", 1)[1].split("/")[0]
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"sendkit-async: error: Redis at 127.0.0.1:{port} did not answer within {SHORT:g} s\n"
    )


async def test_a_url_that_is_not_redis_is_a_configuration_error_without_its_password() -> None:
    from sendkit_async import ConfigurationError

    with pytest.raises(ConfigurationError, match="unusable Redis URL") as caught:
        await run_status("run1", redis_url="http://user:s3cret@127.0.0.1:1/0")
    assert "s3cret" not in str(caught.value)


def test_arqs_own_command_with_our_settings_ends_at_the_bound(
    silent_redis: str, tmp_path: Path
) -> None:
    (tmp_path / "workers.py").write_text(
        "from sendkit_async.jobs import JsonLinesSink, worker_settings\n\n"
        f"settings = worker_settings(sink=JsonLinesSink('out'), redis_url={silent_redis!r},\n"
        f"                           redis_timeout={SHORT!r})\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SENDKIT_")}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "arq", "workers.settings"],
        cwd=tmp_path, env={**clean, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    port = silent_redis.rsplit(":", 1)[1].split("/")[0]
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (  # arq prints the traceback; ours is the error
        "sendkit_async.jobs._config.QueueUnavailableError: "
        f"Redis at 127.0.0.1:{port} did not answer within {SHORT:g} s"
    )
    assert "s3cret" not in done.stdout + done.stderr


def test_the_settings_carry_a_bounded_client_for_arqs_own_command() -> None:
    settings = worker_settings(
        sink=JsonLinesSink("out"), redis_url="redis://127.0.0.1:1/3", redis_timeout=2.5
    )
    assert isinstance(settings["redis_pool"], QueueClient)
    kwargs = settings["redis_pool"].connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (2.5, 2.5)
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 1, 3)
    assert settings["redis_pool"].default_queue_name == settings["queue_name"]
    assert settings["redis_settings"].conn_timeout == 3  # arq's whole seconds, for --check


async def test_the_settings_client_raises_queue_unavailable_for_commands_and_pipelines(
    hangs_after_hello: tuple[str, list[bytes]],
) -> None:
    url, seen = hangs_after_hello
    client = worker_settings(sink=JsonLinesSink("out"), redis_url=url, redis_timeout=SHORT)[
        "redis_pool"
    ]
    try:
        assert await client.ping() is True  # answered: nothing changes for a working Redis
        with pytest.raises(QueueUnavailableError, match=rf"did not answer within {SHORT:g} s"):
            await client.zcard("q")
        with pytest.raises(QueueUnavailableError, match=rf"did not answer within {SHORT:g} s"):
            async with client.pipeline(transaction=True) as pipe:
                pipe.hset("h", "f", "v")
                await pipe.execute()
        with pytest.raises(QueueUnavailableError, match=rf"did not answer within {SHORT:g} s"):
            async with client.pipeline(transaction=True) as pipe:
                await pipe.watch("job")
    finally:
        await client.aclose(close_connection_pool=True)
    assert [n for n in seen if n in (b"ZCARD", b"MULTI", b"WATCH")] == [
        b"ZCARD",
        b"MULTI",
        b"WATCH",
    ]


async def test_arqs_close_of_the_settings_client_does_not_warn(jobs_redis: str) -> None:
    client = worker_settings(sink=JsonLinesSink("out"), redis_url=jobs_redis)["redis_pool"]
    assert await client.ping() is True
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        await client.close(close_connection_pool=True)  # what arq's Worker.close() calls
    assert [str(w.message) for w in seen] == []
