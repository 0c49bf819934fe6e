from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.helpers import Script, scripted_server
from tests.jobs_helpers import flush_db, jobs_db_url
from tests.redis_fixtures import redis_url

__all__ = ["redis_url"]  # a session fixture shared by the Redis and README tests


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own SendKit settings."""
    for name in ("SENDKIT_API_KEY", "SENDKIT_WORKSPACE_ID", "SENDKIT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def server() -> AsyncIterator[Script]:
    async with scripted_server() as script:
        yield script


@pytest.fixture
async def jobs_redis(redis_url: str) -> AsyncIterator[str]:
    """The session's Redis, database 15 (the job-queue tests'), emptied after each test."""
    url = jobs_db_url(redis_url)
    await flush_db(url)
    yield url
    await flush_db(url)
