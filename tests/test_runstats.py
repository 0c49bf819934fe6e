"""A run's own counters: every counter of ClientStats is counted into the run and the client."""

from __future__ import annotations

import attrs

from sendkit_async import AsyncSendKit, ClientStats
from sendkit_async._runstats import counting_core
from tests.helpers import KEY


def test_every_counter_counts_into_the_run_and_into_the_client() -> None:
    client = AsyncSendKit(api_key=KEY, base_url="http://127.0.0.1:9")
    counters = [f.name for f in attrs.fields(ClientStats) if f.name != "by_status"]
    assert {"requests", "cache_hits", "coalesced"} <= set(counters)
    client._core.stats.requests = 5  # earlier calls of the client
    own = ClientStats()
    run = counting_core(client._core, own)
    for n, name in enumerate(counters, start=1):
        setattr(run.stats, name, getattr(run.stats, name) + n)
    run.stats.by_status[200] = 2
    assert [getattr(own, name) for name in counters] == list(range(1, len(counters) + 1))
    shared = client._core.stats
    assert shared.requests == 6
    assert [getattr(shared, name) for name in counters[1:]] == list(range(2, len(counters) + 1))
    assert (own.by_status, shared.by_status) == ({200: 2}, {200: 2})
