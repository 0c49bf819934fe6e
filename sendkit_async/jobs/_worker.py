"""``worker_settings``: arq's worker settings for our task; ``run_worker`` runs one."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, create_worker, func

from ._config import DEFAULT_QUEUE, REDIS_TIMEOUT, TASK_NAME, JobsConfig, redis_url_from_env
from ._keys import KeyResolver
from ._redis import bounded_client, connect, unavailable
from ._sinks import Sink
from ._stop import until_stopped
from ._task import CONFIG_KEY, fetch_chunk, on_shutdown, on_startup

__all__ = ["close_worker", "run_worker", "until_stopped", "worker_settings"]


def worker_settings(
    *,
    sink: Sink,
    keys: KeyResolver | Mapping[str, str] | None = None,
    redis_url: str | None = None,
    base_url: str | None = None,
    queue_name: str = DEFAULT_QUEUE,
    max_jobs: int = 10,
    concurrency: int = 16,
    rate: float | None = None,
    max_tries: int = 5,
    chunk_timeout: float = 600.0,
    lease: float = 10.0,
    poll_delay: float = 0.5,
    retry_delay: float = 1.0,
    drain: int = 0,
    burst: bool = False,
    redis_timeout: float = REDIS_TIMEOUT,
) -> dict[str, Any]:
    """arq ``WorkerSettings`` (a dict) running the chunk task with these options.

    Use it with ``arq mymodule.settings`` or ``sendkit-async jobs worker``.

    - ``sink``: where each chunk's rows go (:class:`JsonLinesSink`, :class:`ParquetSink`,
      :class:`CallbackSink` or your own with ``async write(output)``).
    - ``keys``: key references -> API keys on this machine (else ``SENDKIT_KEY_<NAME>``).
    - ``max_jobs`` chunks at once per worker; ``concurrency`` requests in flight per key
      per worker; ``rate`` a ceiling in req/s per key for all workers together (else
      learned). Each key has one budget in Redis, shared by every worker.
    - ``max_tries``: runs of a chunk (crashes, shutdowns, chunk timeouts); the next try
      records its remaining ids as failed (``ChunkAbandonedError``).
    - ``lease``: a crashed worker's chunk is taken again after at most this many seconds.
    - ``drain``: on SIGTERM, seconds to let running chunks finish before cancelling
      them; a cancelled chunk goes back to the queue at once (0: cancel at once).
    - ``redis_timeout``: seconds each Redis call of the worker may take (connect, read,
      write), also under arq's own ``arq`` command: the settings carry a Redis client
      (``redis_pool``, connected on first use) with those bounds, and ``redis_settings``
      with ``conn_timeout`` = ``redis_timeout`` rounded up to whole seconds (used by
      ``arq --check`` only, which bounds the connect alone).

    Raises:
        ConfigurationError: a value out of range, or ``redis_url`` is not a Redis URL.
    """
    url = redis_url_from_env(redis_url)
    config = JobsConfig(
        sink=sink, keys=keys, redis_url=url, base_url=base_url, concurrency=concurrency,
        rate=rate, max_tries=max_tries, chunk_timeout=chunk_timeout, lease=lease,
        retry_delay=retry_delay, redis_timeout=redis_timeout,
    )  # fmt: skip
    task = func(
        fetch_chunk,
        name=TASK_NAME,
        # Two tries more than ours: the first records the ids as abandoned, the second
        # retries that record if the sink failed. arq alone would drop them silently.
        max_tries=max_tries + 2,
        timeout=chunk_timeout + 60,
        keep_result=3600,
    )
    return {
        "functions": [task],
        # arq's Worker uses this client instead of building one from redis_settings,
        # whose create_pool bounds the connect only (arq 0.28 passes no socket_timeout).
        "redis_pool": bounded_client(url, queue_name, redis_timeout, ours=True),
        # arq types conn_timeout as whole seconds
        "redis_settings": replace(
            RedisSettings.from_dsn(url), conn_timeout=math.ceil(redis_timeout)
        ),
        "queue_name": queue_name,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "ctx": {CONFIG_KEY: config},
        "max_jobs": max_jobs,
        "poll_delay": poll_delay,
        "job_completion_wait": drain,
        "burst": burst,
        "handle_signals": True,
        "retry_jobs": True,
    }


def run_worker(settings: Mapping[str, Any]) -> int:
    """Run an arq worker with ``settings`` until SIGTERM/SIGINT (or the queue is empty in
    burst mode); returns the number of jobs arq counted as failed.

    On SIGTERM arq cancels the running chunks, which go back to the queue at once
    (after ``drain`` seconds when set), and its main task, which is cancelled again
    until it has ended (:func:`until_stopped`). Unlike ``Worker.run()``, a chunk cancelled
    before it started does not crash the shutdown: every job task is awaited, then
    the clients and the Redis pool are closed. Every Redis call of the worker is
    bounded by ``redis_timeout`` (see :func:`worker_settings`).

    Raises:
        QueueUnavailableError: Redis did not answer within ``redis_timeout`` or refused.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # arq's Worker takes the current loop
    try:
        config: JobsConfig = settings["ctx"][CONFIG_KEY]
        queue = settings.get("queue_name", DEFAULT_QUEUE)
        with unavailable(config.redis_url, config.redis_timeout):
            pool = loop.run_until_complete(connect(config.redis_url, queue, config.redis_timeout))
            try:
                worker = create_worker(dict(settings), redis_pool=pool)
            except BaseException:
                loop.run_until_complete(pool.aclose(close_connection_pool=True))
                raise
            # arq marks a job in progress for its timeout + 10 s; our lease renews a shorter
            # mark, set from the start so a worker killed at once frees its chunks as fast.
            worker.in_progress_timeout_s = config.lease
            worker.on_stop = until_stopped(worker, loop)
            worker.main_task = loop.create_task(worker.main())
            try:
                loop.run_until_complete(worker.main_task)
            except asyncio.CancelledError:  # the signal handler cancels the main task
                pass
            finally:
                loop.run_until_complete(close_worker(worker))
        return worker.jobs_failed
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def close_worker(worker: Worker) -> None:
    """Await every job task of ``worker`` (cancelled or not), then close what it opened.

    ``Worker.close()`` would re-raise a job task's cancellation and skip the rest, and
    calls redis-py's deprecated ``close()``.
    """
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    if worker._pool is None:
        return
    try:
        await worker.pool.delete(worker.health_check_key)
    finally:
        try:
            if worker.on_shutdown is not None:
                await worker.on_shutdown(worker.ctx)
        finally:
            await worker.pool.aclose(close_connection_pool=True)
            worker._pool = None
