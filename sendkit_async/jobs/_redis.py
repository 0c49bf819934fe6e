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
from urllib.parse import urlsplit

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import ConfigurationError
from ._config import QueueUnavailableError

__all__ = ["bounded_client", "connect", "unavailable", "where"]


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


def bounded_client(url: str, queue: str, timeout: float) -> ArqRedis:
    """arq's Redis client for ``url``, not yet connected: connect, read and write each
    bounded by ``timeout``. It connects on first use, in the loop that uses it.

    Raises:
        ConfigurationError: ``url`` is not a Redis URL.
    """
    try:
        connections = ConnectionPool.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
    except ValueError as exc:  # redis-py's words name the scheme, never the password
        raise ConfigurationError(f"unusable Redis URL for the job queue: {exc}") from None
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
