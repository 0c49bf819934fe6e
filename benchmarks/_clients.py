"""One client run in its own process; prints a JSON report as its last stdout line.

    python benchmarks/_clients.py --client sendkit_async --base-url URL --ids-file IDS
    python benchmarks/_clients.py --client sendkit_async --base-url URL --generate 100000 --iter

Three clients (and sendkit_async's blocking client) fetch ``GET /v1/analytics/campaigns/{id}``
for every id:

- ``sendkit_async``: ``AsyncSendKit(max_concurrency=C).gather_campaigns(ids, concurrency=C)``
  (``iter_campaigns`` with ``--iter``), results parsed into attrs models.
- ``sendkit_async --tasks N``: N tasks each awaiting ``client.analytics.campaign(id)`` one
  id after another (the async twin of ``sendkit_sync --threads N``).
- ``sendkit_sync``: ``SendKit(max_concurrency=C).gather_campaigns(ids, concurrency=C)`` from
  the main thread; with ``--threads N``, N threads each call ``client.analytics.campaign(id)``
  one id after another (so at most N requests in flight).
- ``aiohttp``: the floor. A semaphore of C, GET, ``json.loads``; no retries at all.
- ``aiohttp+tenacity``: what a careful user writes by hand: tenacity ``@retry`` (5 attempts,
  random exponential backoff) around a GET that raises on 429/5xx and connection errors,
  sleeping a numeric ``Retry-After`` before retrying; semaphore of C around the request only.

CPU is ``time.process_time()`` around the timed run only (imports, start-up and the
warm-up are outside it); ``maxrss_kb`` is the process's peak RSS (``VmHWM``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

API_KEY = "sk_bench_key"
PATH = "/v1/analytics/campaigns/"


class Run:
    """Counters one client fills in during the timed run."""

    def __init__(self) -> None:
        self.sample: Callable[[], tuple[int, int]] | None = None
        self.reset()
        self.rss_early_kb: int | None = None

    def reset(self) -> None:
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()  # every answer's status (0: no answer)
        self.attempts = 0
        self.cpu = self.wall = 0.0
        self.samples: list[tuple[float, int, int]] = []  # (t, attempts, 200s) so far

    def start(self, *, sampling: bool = True) -> None:
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        if sampling and self.sample is not None:
            self._sampler = asyncio.get_running_loop().create_task(self._sampling())

    async def _sampling(self) -> None:
        assert self.sample is not None
        while True:
            attempts, ok = self.sample()
            self.samples.append((time.perf_counter() - self._wall, attempts, ok))
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        self.cpu = time.process_time() - self._cpu
        self.wall = time.perf_counter() - self._wall
        if self.sample is not None:
            self._sampler.cancel()


def peak_rss_kb() -> int:
    """Peak RSS of this process in KiB: ``VmHWM``, else ``ru_maxrss``.

    Linux keeps ``ru_maxrss`` across fork + exec, so a child of a big parent would report
    the parent's size; ``VmHWM`` belongs to the new address space and starts afresh.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_rss_kb() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * resource.getpagesize() // 1024


# --- sendkit_async ------------------------------------------------------------------------


async def run_sendkit(args: argparse.Namespace, ids: list[str], run: Run) -> None:
    from sendkit_async import AsyncSendKit

    conc = args.concurrency
    limiter = None
    if args.redis_url:
        from sendkit_async.redis_limiter import RedisRateLimiter

        limiter = RedisRateLimiter.from_url(
            args.redis_url, api_key=API_KEY, base_url=args.base_url, max_concurrency=conc
        )
    async with AsyncSendKit(
        api_key=API_KEY,
        base_url=args.base_url,
        max_concurrency=conc,
        rate_limiter=limiter,
        hooks=make_hooks(args.hooks),
    ) as sk:
        if args.warmup:
            await sk.gather_campaigns(ids[: args.warmup], concurrency=conc, return_exceptions=True)
        before = sk.stats.requests
        if args.timeline:
            by_status = sk.stats.by_status
            run.sample = lambda: (sk.stats.requests - before, by_status.get(200, 0))
        run.start()
        if args.iter:
            marks = {args.generate // 10} if args.generate else set()
            async for result in sk.iter_campaigns(id_source(args, ids), concurrency=conc):
                if result.error is None:
                    run.ok += 1
                else:
                    run.errors[type(result.error).__name__] += 1
                if run.ok in marks:
                    run.rss_early_kb = current_rss_kb()
        elif args.tasks:
            tasks = args.tasks
            outcomes = await asyncio.gather(
                *(fetch_each_async(sk, ids[n::tasks]) for n in range(tasks))
            )
            for ok, errors in outcomes:
                run.ok += ok
                run.errors.update(errors)
        else:
            results = await sk.gather_campaigns(ids, concurrency=conc, return_exceptions=True)
            for value in results:
                if isinstance(value, Exception):
                    run.errors[type(value).__name__] += 1
                else:
                    run.ok += 1
        run.stop()
        run.attempts = sk.stats.requests - before
        run.statuses.update(sk.stats.by_status)
        run.statuses[0] += sk.stats.connection_errors
    if limiter is not None:
        await limiter.aclose()


HOOKS = ("none", "empty", "noop", "otel-off", "otel-api", "otel-sdk")
"""``--hooks``: none; ``Hooks()`` with nothing overridden; every hook method a no-op;
OpenTelemetry imported and an SDK set up but not given to the client; ``OpenTelemetryHooks``
on the API alone (no SDK: no-op tracer and meter); on the SDK (spans through a
``SimpleSpanProcessor`` to an exporter that drops them, metrics aggregated for a reader)."""

_keep: list[Any] = []  # SDK objects that must outlive the run


def make_hooks(kind: str) -> Any:
    """The ``hooks=`` of ``--hooks kind`` (None for none and otel-off)."""
    from sendkit_async import Hooks

    if kind == "none":
        return None
    if kind == "empty":
        return Hooks()
    if kind == "noop":

        class Noop(Hooks):
            def on_call_start(self, call: Any) -> None:
                pass

            def on_request(self, event: Any) -> None:
                pass

            def on_response(self, event: Any) -> None:
                pass

            def on_retry(self, event: Any) -> None:
                pass

            def on_throttle(self, event: Any) -> None:
                pass

            def on_call_end(self, event: Any) -> None:
                pass

        return Noop()
    from sendkit_async.otel import OpenTelemetryHooks

    if kind == "otel-api":
        return OpenTelemetryHooks()
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Drop()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    _keep.extend([tracer_provider, meter_provider])
    if kind == "otel-off":
        return None
    return OpenTelemetryHooks(tracer_provider=tracer_provider, meter_provider=meter_provider)


# --- sendkit_async's blocking client ---------------------------------------------------------


def run_sendkit_sync(args: argparse.Namespace, ids: list[str], run: Run) -> None:
    """``SendKit``: one ``gather_campaigns`` from the main thread, or, with ``--threads N``,
    N threads each calling ``client.analytics.campaign(id)`` one id after another."""
    from sendkit_async import SendKit

    conc = args.concurrency
    with SendKit(api_key=API_KEY, base_url=args.base_url, max_concurrency=conc) as sk:
        if args.warmup:
            sk.gather_campaigns(ids[: args.warmup], concurrency=conc, return_exceptions=True)
        before = sk.stats.requests
        run.start(sampling=False)
        if args.threads:
            threads = args.threads
            with ThreadPoolExecutor(threads) as pool:
                outcomes = list(pool.map(lambda n: fetch_each(sk, ids[n::threads]), range(threads)))
            for ok, errors in outcomes:
                run.ok += ok
                run.errors.update(errors)
        else:
            results = sk.gather_campaigns(ids, concurrency=conc, return_exceptions=True)
            for value in results:
                if isinstance(value, Exception):
                    run.errors[type(value).__name__] += 1
                else:
                    run.ok += 1
        run.stop()
        stats = sk.stats
        run.attempts = stats.requests - before
        run.statuses.update(stats.by_status)
        run.statuses[0] += stats.connection_errors


def fetch_each(sk: Any, ids: list[str]) -> tuple[int, Counter[str]]:
    from sendkit_async import SendKitError

    ok, errors = 0, Counter[str]()
    for cid in ids:
        try:
            sk.analytics.campaign(cid)
        except SendKitError as exc:
            errors[type(exc).__name__] += 1
        else:
            ok += 1
    return ok, errors


async def fetch_each_async(sk: Any, ids: list[str]) -> tuple[int, Counter[str]]:
    from sendkit_async import SendKitError

    ok, errors = 0, Counter[str]()
    for cid in ids:
        try:
            await sk.analytics.campaign(cid)
        except SendKitError as exc:
            errors[type(exc).__name__] += 1
        else:
            ok += 1
    return ok, errors


def id_source(args: argparse.Namespace, ids: list[str]) -> Iterator[str]:
    if args.generate:
        return (f"{i:024x}" for i in range(args.generate))
    return iter(ids)


# --- raw aiohttp --------------------------------------------------------------------------


def make_session(conc: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers={"X-Api-Key": API_KEY},
        connector=aiohttp.TCPConnector(limit=conc),
        timeout=aiohttp.ClientTimeout(total=30),
    )


async def gather_timed(
    one: Callable[[str], Awaitable[Any]], ids: list[str], warmup: int, run: Run
) -> None:
    """Warm up, then time one ``asyncio.gather`` over every id; results are kept until the end."""
    if warmup:
        await asyncio.gather(*(one(cid) for cid in ids[:warmup]))
        run.reset()
    run.start()
    results = await asyncio.gather(*(one(cid) for cid in ids))
    run.stop()
    del results


async def run_raw(args: argparse.Namespace, ids: list[str], run: Run) -> None:
    sem = asyncio.Semaphore(args.concurrency)
    base = args.base_url + PATH

    async def one(cid: str) -> Any:
        async with sem:
            run.attempts += 1
            try:
                async with session.get(base + cid) as resp:
                    body = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                run.errors[type(exc).__name__] += 1
                return None
        if status == 200:
            run.ok += 1
            return json.loads(body)  # kept, as gather_campaigns keeps its results
        run.errors[f"HTTP {status}"] += 1
        return None

    async with make_session(args.concurrency) as session:
        await gather_timed(one, ids, args.warmup, run)


# --- aiohttp + tenacity, by hand --------------------------------------------------------


class RetryableStatus(Exception):
    """A 429 or 5xx answer: worth another attempt."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class FinalStatus(Exception):
    """Any other non-200 answer."""


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After in seconds; HTTP dates are not handled (naive, like most hand-written code)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@retry(
    stop=stop_after_attempt(5),
    wait=wait_random_exponential(multiplier=0.5, max=8),
    retry=retry_if_exception_type((RetryableStatus, aiohttp.ClientError, asyncio.TimeoutError)),
    reraise=True,
)
async def fetch_with_tenacity(
    session: aiohttp.ClientSession, sem: asyncio.Semaphore, url: str, run: Run
) -> Any:
    async with sem:
        run.attempts += 1
        try:
            async with session.get(url) as resp:
                body = await resp.read()
                status = resp.status
                wait = retry_after_seconds(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, asyncio.TimeoutError):
            run.statuses[0] += 1
            raise
        run.statuses[status] += 1
    if status == 429 or status >= 500:
        if wait:
            await asyncio.sleep(wait)  # the server said when: sleep it, then tenacity's backoff
        raise RetryableStatus(status)
    if status != 200:
        raise FinalStatus(f"HTTP {status}")
    return json.loads(body)


async def run_tenacity(args: argparse.Namespace, ids: list[str], run: Run) -> None:
    sem = asyncio.Semaphore(args.concurrency)
    base = args.base_url + PATH

    async def one(cid: str) -> Any:
        try:
            data = await fetch_with_tenacity(session, sem, base + cid, run)
        except (RetryableStatus, FinalStatus, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            run.errors[str(exc) if isinstance(exc, RetryableStatus) else type(exc).__name__] += 1
            return None
        run.ok += 1
        return data  # kept, as gather_campaigns keeps its results

    if args.timeline:
        run.sample = lambda: (run.attempts, run.statuses[200])
    async with make_session(args.concurrency) as session:
        await gather_timed(one, ids, args.warmup, run)


RUNNERS = {"sendkit_async": run_sendkit, "aiohttp": run_raw, "aiohttp+tenacity": run_tenacity}
SYNC_RUNNERS = {"sendkit_sync": run_sendkit_sync}


async def main_async(args: argparse.Namespace, ids: list[str]) -> dict[str, Any]:
    if args.requests and ids:
        ids = [ids[i % len(ids)] for i in range(args.requests)]
    run = Run()
    await RUNNERS[args.client](args, ids, run)
    return report(args, ids, run)


def main_sync(args: argparse.Namespace, ids: list[str]) -> dict[str, Any]:
    run = Run()
    SYNC_RUNNERS[args.client](args, ids, run)
    return report(args, ids, run)


def report(args: argparse.Namespace, ids: list[str], run: Run) -> dict[str, Any]:
    cpu, wall = run.cpu, run.wall
    n = args.generate or len(ids)
    return {
        "client": args.client,
        "n": n,
        "ok": run.ok,
        "failed": sum(run.errors.values()),
        "errors": dict(run.errors),
        "attempts": run.attempts,
        "wall": wall,
        "cpu": cpu,
        "cpu_ms_per_1000": cpu / max(1, run.attempts) * 1e6,
        "rps": run.attempts / wall if wall > 0 else 0.0,
        "maxrss_kb": peak_rss_kb(),
        "rss_early_kb": run.rss_early_kb,
        "rss_end_kb": current_rss_kb(),
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "samples": run.samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=sorted([*RUNNERS, *SYNC_RUNNERS]), required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--ids-file", help="ids, one a line")
    parser.add_argument("--requests", type=int, default=0, help="cycle the ids up to this many")
    parser.add_argument("--generate", type=int, default=0, help="N synthetic ids (echo server)")
    parser.add_argument("--iter", action="store_true", help="sendkit_async: iter_campaigns")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=0, help="untimed requests first")
    parser.add_argument("--timeline", action="store_true", help="sample attempts every 50 ms")
    parser.add_argument("--redis-url", help="sendkit_async: share the budget in Redis")
    parser.add_argument("--hooks", choices=HOOKS, default="none", help="sendkit_async: hooks")
    parser.add_argument("--threads", type=int, default=0, help="sendkit_sync: N calling threads")
    parser.add_argument(
        "--tasks", type=int, default=0, help="sendkit_async: N tasks calling one id at a time"
    )
    args = parser.parse_args()
    if args.generate and args.client != "sendkit_async":
        parser.error("--generate is for sendkit_async --iter only")
    ids = Path(args.ids_file).read_text().split() if args.ids_file else []
    if args.client in SYNC_RUNNERS:
        result = main_sync(args, ids)
    else:
        result = asyncio.run(main_async(args, ids))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
