"""The job queue's Redis connection: arq's client with every Redis wait bounded.

arq's own ``create_pool`` sets a connect timeout only, so a Redis that accepts the
connection and never answers would hang every call forever. We build arq's client
ourselves with a socket timeout on every read and write, and turn a Redis that does
not answer (or cannot be reached) into :class:`QueueUnavailableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import ConfigurationError
from ._config import QueueUnavailableError

__all__ = ["QueueClient", "bounded_client", "connect", "unavailable", "where"]


def where(url: str) -> str:
    """``host:port`` (or the socket path) of ``url``: never the password it may carry."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


@contextlib.contextmanager
def unavailable(url: str | None, timeout: float | None) -> Iterator[None]:
    """Turn Redis not answering within ``timeout`` (or unreachable) into our error.

    ``url`` and ``timeout`` are None for a client the caller built (its own bounds).

    Raises:
        QueueUnavailableError: a Redis timeout or connection error inside the block.
    """
    try:
        yield
    except (RedisTimeoutError, asyncio.TimeoutError) as exc:
        place = "Redis" if url is None else f"Redis at {where(url)}"
        bound = "in time" if timeout is None else f"within {timeout:g} s"
        raise QueueUnavailableError(f"{place} did not answer {bound}") from exc
    except (RedisConnectionError, OSError) as exc:
        place = "Redis" if url is None else f"Redis at {where(url)}"
        raise QueueUnavailableError(f"{place} could not be reached ({type(exc).__name__})") from exc


class _Pipeline(Pipeline):
    """A pipeline of :class:`QueueClient`: its Redis failures are ours too."""

    _sendkit_where: tuple[str, float]

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        with unavailable(*self._sendkit_where):
            return await super().execute(raise_on_error)

    async def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        with unavailable(*self._sendkit_where):
            return await super().immediate_execute_command(*args, **options)  # type: ignore[no-untyped-call]


class QueueClient(ArqRedis):
    """arq's client for the settings of arq's own ``arq`` command: a Redis that does not
    answer in time, or cannot be reached, raises :class:`QueueUnavailableError` (naming
    its host and port, never the password) instead of redis-py's errors.

    arq's worker catches no Redis timeout or connection error itself, so only the error
    a user sees changes; its own handling of Redis answers (``WatchError``, ...) is kept.
    """

    def __init__(self, *args: Any, where: tuple[str, float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sendkit_where = where

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        with unavailable(*self._sendkit_where):
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    async def close(self, close_connection_pool: bool | None = None) -> None:
        """:meth:`aclose`: arq's worker closes its pool with redis-py's deprecated
        ``close()``, which would warn at every stop of arq's own command."""
        await self.aclose(close_connection_pool)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pipe = _Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe._sendkit_where = self._sendkit_where
        return pipe


def bounded_client(url: str, queue: str, timeout: float, *, ours: bool = False) -> ArqRedis:
    """arq's Redis client for ``url``, not yet connected: connect, read and write each
    bounded by ``timeout``. It connects on first use, in the loop that uses it. With
    ``ours``, a :class:`QueueClient` (its failures are :class:`QueueUnavailableError`).

    Raises:
        ConfigurationError: ``url`` is not a Redis URL.
    """
    try:
        connections = ConnectionPool.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
    except ValueError as exc:  # redis-py's words name the scheme, never the password
        raise ConfigurationError(f"unusable Redis URL for the job queue: {exc}") from None
    if ours:
        return QueueClient(
            connection_pool=connections, default_queue_name=queue, where=(url, timeout)
        )
    return ArqRedis(connection_pool=connections, default_queue_name=queue)


async def connect(url: str, queue: str, timeout: float) -> ArqRedis:
    """:func:`bounded_client`, checked with a PING before it is returned.

    Raises:
        QueueUnavailableError: Redis did not answer the PING within ``timeout`` seconds,
            or refused the connection.
        ConfigurationError: ``url`` is not a Redis URL.
    """
    pool = bounded_client(url, queue, timeout)
    try:
        with unavailable(url, timeout):
            await pool.ping()
    except BaseException:
        await pool.aclose(close_connection_pool=True)
        raise
    return pool
