"""Helpers of the job-queue tests: unique names, a Redis scan for secrets, an in-process worker."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

if TYPE_CHECKING:
    from sendkit_async.jobs._progress import ProgressWriter


def unique(prefix: str) -> str:
    """A name no other test (or earlier run on a shared Redis) uses."""
    return f"{prefix}-{secrets.token_hex(4)}"


def new_key() -> str:
    """A fresh API key: a scan of Redis for it finds only what this test stored."""
    return f"sk_jobs_{secrets.token_hex(12)}"


async def redis_dump(url: str) -> list[bytes]:
    """Every key name and every value (of every type) in the Redis at ``url``."""
    found: list[bytes] = []
    async with Redis.from_url(url) as redis:
        async for name in redis.scan_iter(count=1000):
            found.append(name)
            kind = (await redis.type(name)).decode()
            if kind == "string":
                value = await redis.get(name)
                found.append(value or b"")
            elif kind == "hash":
                for k, v in (await redis.hgetall(name)).items():
                    found += [k, v]
            elif kind == "zset":
                found += await redis.zrange(name, 0, -1)
            elif kind == "list":
                found += await redis.lrange(name, 0, -1)
            elif kind == "set":
                found += list(await redis.smembers(name))
    return found


def ids_by_row(rows: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """How often each (key reference, id) appears among the rows."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        pair = (row["key_ref"], row["id"])
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def expected_pairs(sources: Mapping[str, list[str]]) -> set[tuple[str, str]]:
    return {(ref, i) for ref, ids in sources.items() for i in ids}


JOBS_DB = 15


def jobs_db_url(url: str) -> str:
    """``url`` on database 15: arq's pickled jobs never meet other tests' scans of db 0."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{JOBS_DB}"))


async def flush_db(url: str) -> None:
    """Empty the jobs tests' database (theirs alone)."""
    async with Redis.from_url(url) as redis:
        await redis.flushdb()


@contextlib.asynccontextmanager
async def running(writer: ProgressWriter) -> AsyncIterator[ProgressWriter]:
    """``writer`` started, and closed (``aclose``) at the end."""
    writer.start()
    try:
        yield writer
    finally:
        await writer.aclose()
