"""Every Redis wait of the job queue is bounded: a Redis that accepts the connection and
never answers ends in QueueUnavailableError (the bound shortened by ``redis_timeout``)."""

from __future__ import annotations

import gc
import socket
from collections.abc import Iterator

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

SHORT = 0.05  # the bound, shortened for the tests (no test measures it)


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A loopback port whose kernel accepts connections that nobody ever answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        port = server.getsockname()[1]
        yield f"redis://:s3cret@127.0.0.1:{port}/0"
    gc.collect()  # a socket left open by the client would warn here (warnings are errors)


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
