"""CPU cost of a chunk's progress hash (``sendkit_async.jobs``), per answered row.

    python benchmarks/bench_progress.py [--quick] [--repeats N] [--no-redis]

While a chunk runs, every answered row is also recorded in a Redis hash (JSON per row)
so that a retried chunk fetches only unanswered ids. This measures, in one process,
interleaved per repeat, ``time.process_time()`` per row of:

- ``request``: one ``client.analytics.campaign(id)`` through the request pipeline, with a
  stand-in transport that answers at once (as ``bench_hooks_pipeline.py``): the part of
  a request's CPU that is sendkit_async's own, the yardstick;
- ``to_wire``: the row's analytics as the API's JSON data, made once per row and shared
  by the hash and the sink (which needs it anyway), for scale;
- ``encode``: the hash's value of one row from that data (the hash's own share);
- ``record``: the hash's whole cost against a throwaway ``redis-server`` on loopback:
  10 chunks of 100 ids at once in one worker, 500 answers/s between them in real time
  (a chunk ends after its 100th answer and the next one starts), ``add`` per answer and
  the worker's writer, minus the same loop without them (the server's CPU is its own
  process's, not counted).

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
TICK = 0.01  # answers arrive in RATE * TICK groups
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
    sink needs it anyway (``to_wire`` once per row, shared by the hash and the sink)."""
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
    from sendkit_async.jobs._progress import dump_row

    start = time.process_time()
    for row in rows:
        dump_row(row)
    return (time.process_time() - start) / len(rows) * 1e6


async def _answers(redis: Any, rows: list[Any], record: bool) -> float:
    """CPU seconds of feeding ``rows`` as the answers of ``CHUNKS`` chunks running at once,
    ``RATE`` per second between them (one chunk after the other); a chunk ends after
    ``CHUNK`` answers and the next one starts (their ends staggered)."""
    from sendkit_async.jobs._progress import ChunkProgress, ProgressWriter

    per_tick = max(1, round(RATE * TICK))
    start = time.process_time()
    writer = ProgressWriter(redis)  # one per worker, as on_startup makes it
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
            if i % per_tick == per_tick - 1:
                await asyncio.sleep(TICK)  # the next answers arrive
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
    paced = 200 if quick else 500  # answers fed in real time (RATE/s) for ``record``
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
                    paced_rows = fresh(base_rows[:paced], wire=True)
                    add(f"record {shape}", []).append(record_us(url, paced_rows))
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
            "title": "The progress hash of a chunk: CPU per answered row",
            "about": (
                f"{n:,} rows per run ({paced:,} for `record`, fed in real time), median "
                f"(and range) of {repeats} interleaved runs, `time.process_time()` of this "
                "process. `request`: one `client.analytics.campaign(id)` through the "
                "pipeline with a transport that answers at once; `to_wire`: a row's API "
                "JSON data, made once and shared by the hash and the sink; `encode`: the "
                f"hash's value of a row from it; `record`: {CHUNKS} chunks of {CHUNK} ids "
                f"at once, {RATE:g} answers/s between them, `add` + the worker's writer "
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
