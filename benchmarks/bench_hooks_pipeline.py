"""CPU of the request pipeline alone, per call, with each kind of hooks (no network).

    python benchmarks/bench_hooks_pipeline.py [--quick] [--repeats N]

The network and aiohttp are the noisy bulk of ``bench_overhead.py``'s figures; here a
stand-in transport answers every request at once with the seed fixture's body, so what is
measured is sendkit_async's own work per call (pipeline, limiter, guard, parsing) plus the
hooks'. One process; every variant gets its own client; variants interleaved per repeat;
``time.process_time()`` around 20,000 sequential ``client.analytics.campaign(id)`` calls.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from _clients import make_hooks
from _common import ROOT, Section, standalone

sys.path.insert(0, str(ROOT))  # in this process (unlike the other benchmarks): this checkout

VARIANTS = ("none", "empty", "otel-off", "noop", "otel-api", "otel-sdk")
BODY = (ROOT / "tests" / "fixtures" / "analytics_campaign_seed.json").read_bytes()


class InstantTransport:
    """Answers every request at once with ``BODY`` (200); what the pipeline needs of one."""

    closed = False
    owns_session = True
    _secrets = ("sk_bench_key",)

    def __init__(self) -> None:
        from sendkit_async._transport import RawResponse

        self.answer = RawResponse(200, {"Content-Type": "application/json"}, BODY)

    async def request(self, method: str, url: Any, *, timeout: float | None = None) -> Any:
        return self.answer

    async def aclose(self) -> None:
        self.closed = True


async def one_run(variant: str, n: int) -> float:
    """Microseconds of CPU per call."""
    from sendkit_async import AsyncSendKit

    client = AsyncSendKit(
        api_key="sk_bench_key", base_url="http://127.0.0.1:9", hooks=make_hooks(variant)
    )
    client._core.transport = InstantTransport()  # type: ignore[assignment]
    ids = [f"{i:024x}" for i in range(n)]
    for cid in ids[:500]:  # warm-up
        await client.analytics.campaign(cid)
    start = time.process_time()
    for cid in ids:
        await client.analytics.campaign(cid)
    cpu = time.process_time() - start
    await client.aclose()
    return cpu / n * 1e6


def run(*, quick: bool = False, repeats: int = 5) -> list[Section]:
    n = 2_000 if quick else 20_000
    runs: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(repeats):
        for variant in VARIANTS:
            runs[variant].append(asyncio.run(one_run(variant, n)))
    base = statistics.median(runs["none"])
    rows = []
    for variant in VARIANTS:
        us = statistics.median(runs[variant])
        low, high = min(runs[variant]), max(runs[variant])
        rows.append([variant, us, f"{low:.1f}-{high:.1f}", us - base, us / base])
    return [
        {
            "title": "Request pipeline alone, with hooks (no network)",
            "about": (
                f"{n:,} sequential `client.analytics.campaign(id)` calls per run through a "
                "stand-in transport that answers at once (seed fixture body); CPU "
                f"(`time.process_time()`) per call, median (and range) of {repeats}."
            ),
            "columns": ["hooks", "CPU us / call", "range", "vs none (us)", "vs none"],
            "rows": rows,
            "notes": [],
            "raw": runs,
        }
    ]


if __name__ == "__main__":
    standalone(run)
