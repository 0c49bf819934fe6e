"""Fixtures for the simulator tests: a client session that is always closed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.simulator.sim_helpers import HEADERS


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout, headers=HEADERS) as s:
        yield s


@pytest.fixture
async def bare() -> AsyncIterator[aiohttp.ClientSession]:
    """A session that sends no API key by default."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s
