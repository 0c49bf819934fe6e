"""CPU cost of a chunk's progress list (``sendkit_async.jobs``), per answered row.

    python benchmarks/bench_progress.py [--quick] [--repeats N] [--no-redis]

While a chunk runs, every answered row is also recorded in a Redis list (the worker's
one progress writer appends each chunk's new rows as one value every 0.5 s) so that a
retried chunk fetches only unanswered ids. This measures, in one process, interleaved
per repeat, ``time.process_time()`` per row of:

- ``request``: one ``client.analytics.campaign(id)`` through the request pipeline, with a
  stand-in transport that answers at once (as ``bench_hooks_pipeline.py``): the part of
  a request's CPU that is sendkit_async's own, the yardstick;
- ``to_wire``: the row's analytics as the API's JSON data, made once per row and shared
  by the list and the sink (which needs it anyway), for scale;
- ``encode``: the stored form of a row from that data, in a chunk's batch of one write
  (25 rows: 500/s over 10 chunks for 0.5 s);
- ``record``: the list's whole cost against a throwaway ``redis-server`` on loopback:
  10 chunks of 100 ids at once in one worker, 500 answers/s between them (in virtual
  time: the writer's 0.5 s pause ends after 250 answers; a chunk ends after its 100th
  answer and the next one starts, its rows not yet written dropped), ``add`` per
  answer and the worker's writes, minus the same loop without them (the server's CPU
  is its own process's, not counted).

Rows are the seed fixture's analytics (``seed``) and the current API shape's (``current``).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from typing import Any

from _common import ROOT, Section, standalone

sys.path.insert(0, str(ROOT))  # in this process (as bench_hooks_pipeline): this checkout

FIXTURES = ROOT / "tests" / "fixtures"
SHAPES = ("seed", "current")
CHUNKS = 10  # chunks running at once in one worker (worker_settings' max_jobs)
CHUNK = 100  # ids per chunk (`sendkit-async jobs enqueue --chunk-size 100`)
RATE = 500.0  # answers per second in that worker (e.g. two keys at 250/s)
WRITE_EVERY = 0.5  # sendkit_async.jobs._progress.WRITE_EVERY
OVERHEAD_US = 175.0  # bench_overhead: sendkit_async CPU per request, end to end (README)


def rows_of(shape: str, n: int) -> list[Any]:
    from sendkit_async.jobs import Row
    from sendkit_async.models import CampaignAnalytics
    from sendkit_async.wire import from_wire

    data = json.loads((FIXTURES / f"analytics_campaign_{shape}.json").read_text())["data"]
    analytics = from_wire(data, CampaignAnalytics)
    return [Row(f"{i:024x}", analytics=analytics) for i in range(n)]


def request_us(n: int) -> float:
    from bench_hooks_pipeline import one_run

    return asyncio.run(one_run("none", n))


def fresh(rows: list[Any], *, wire: bool) -> list[Any]:
    """New rows (nothing cached); with ``wire``, each one's API JSON already made, as the
    sink needs it anyway (``to_wire`` once per row, shared by the list and the sink)."""
    from sendkit_async.jobs import Row

    made = [Row(r.id, analytics=r.analytics) for r in rows]
    if wire:
        for r in made:
            r._wire  # noqa: B018 - the cached property is the point
    return made


def to_wire_us(rows: list[Any]) -> float:
    start = time.process_time()
    for row in rows:
        row._wire  # noqa: B018
    return (time.process_time() - start) / len(rows) * 1e6


def encode_us(rows: list[Any]) -> float:
    from sendkit_async.jobs._progress import dump_rows

    batch = round(RATE * WRITE_EVERY / CHUNKS)  # one chunk's answers in one write
    start = time.process_time()
    for first in range(0, len(rows), batch):
        dump_rows(rows[first : first + batch])
    return (time.process_time() - start) / len(rows) * 1e6


class Pauses:
    """The writer's pause between writes, in virtual time: it ends when the benchmark has
    fed a pause's worth of answers (``RATE * WRITE_EVERY``), so no run waits for real."""

    def __init__(self) -> None:
        self.sleeping = asyncio.Event()
        self._over = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await self._over.wait()
        self._over.clear()

    async def end(self) -> None:
        """End the pause the writer is in (if any) and let its write start."""
        if self.sleeping.is_set():
            self.sleeping.clear()
            self._over.set()
            await asyncio.sleep(0)


async def _answers(redis: Any, rows: list[Any], record: bool) -> float:
    """CPU seconds of feeding ``rows`` as the answers of ``CHUNKS`` chunks running at once
    (one chunk after the other), a write every ``RATE * WRITE_EVERY`` answers; a chunk
    ends after ``CHUNK`` answers and the next one starts (their ends staggered)."""
    from sendkit_async.jobs._progress import ChunkProgress, ProgressWriter

    per_pause = round(RATE * WRITE_EVERY)
    pauses = Pauses()
    start = time.process_time()
    writer = ProgressWriter(redis, sleep=pauses.sleep)  # one per worker (on_startup)
    writer.start()
    running: list[ChunkProgress | None] = [None] * CHUNKS
    counts = [c * CHUNK // CHUNKS for c in range(CHUNKS)]
    made = 0
    try:
        for i, row in enumerate(rows):
            c = i % CHUNKS
            progress = running[c]
            if progress is None:
                progress = running[c] = ChunkProgress(writer, f"bench:partial:{made}")
                await progress.__aenter__()
                made += 1
            if record:
                progress.add(row)
            counts[c] += 1
            if counts[c] >= CHUNK:  # done: its rows not yet written never will be
                await progress.__aexit__(None, None, None)
                running[c], counts[c] = None, 0
            if i % per_pause == per_pause - 1:
                await asyncio.sleep(0)  # the writer, woken by the first answer, pauses
                await pauses.end()
                await writer.flush("")  # waits for the write in flight
    finally:
        await writer.aclose()
    return time.process_time() - start


def record_us(url: str, rows: list[Any]) -> float:
    from redis.asyncio import Redis

    async def go() -> float:
        redis = Redis.from_url(url)
        try:
            await _answers(redis, rows[:CHUNKS], True)  # warm-up (connection, code paths)
            with_it = await _answers(redis, rows, True)
            without = await _answers(redis, rows, False)
            await redis.flushdb()
        finally:
            await redis.aclose()
        return (with_it - without) / len(rows) * 1e6

    return asyncio.run(go())


def run(*, quick: bool = False, repeats: int = 5, redis: bool = True) -> list[Section]:
    n = 1_000 if quick else 10_000
    proc, url = None, ""
    if redis:
        from bench_redis import start_redis

        proc, url = start_redis()
    runs: dict[str, list[float]] = {"request": []}
    try:
        rows = {shape: rows_of(shape, n) for shape in SHAPES}
        for _ in range(repeats):
            runs["request"].append(request_us(n))
            for shape in SHAPES:
                base_rows = rows[shape]
                add = runs.setdefault
                add(f"to_wire {shape}", []).append(to_wire_us(fresh(base_rows, wire=False)))
                add(f"encode {shape}", []).append(encode_us(fresh(base_rows, wire=True)))
                if redis:
                    add(f"record {shape}", []).append(record_us(url, fresh(base_rows, wire=True)))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
    base = statistics.median(runs["request"])
    table = []
    for what, values in runs.items():
        us = statistics.median(values)
        table.append([what, round(us, 1), f"{min(values):.1f}-{max(values):.1f}",
                      f"{us / base:.1%}", f"{us / OVERHEAD_US:.1%}"])  # fmt: skip
    return [
        {
            "title": "The progress list of a chunk: CPU per answered row",
            "about": (
                f"{n:,} rows per run, median "
                f"(and range) of {repeats} interleaved runs, `time.process_time()` of this "
                "process. `request`: one `client.analytics.campaign(id)` through the "
                "pipeline with a transport that answers at once; `to_wire`: a row's API "
                "JSON data, made once and shared by the progress list and the sink; "
                "`encode`: the stored form of a row from it (in batches of one chunk's "
                f"write); `record`: {CHUNKS} chunks of {CHUNK} ids "
                f"at once, {RATE:g} answers/s between them (virtual time: a write every "
                f"{RATE * WRITE_EVERY:g} answers), `add` + the worker's writes "
                "against redis-server on loopback, minus the same loop without them. Last "
                f"column: share of bench_overhead's {OVERHEAD_US:g} us of CPU per request, "
                "end to end."
            ),
            "columns": ["per row", "CPU us", "range", "vs request", "vs end-to-end request"],
            "rows": table,
            "notes": [],
            "raw": runs,
        }
    ]


if __name__ == "__main__":
    if "--no-redis" in sys.argv:
        sys.argv.remove("--no-redis")
        standalone(lambda **kw: run(redis=False, **kw))
    else:
        standalone(run)
