"""Many machines: refresh whole workspaces with an arq job queue and one budget per key.

Needs the ``jobs`` extra (``pip install 'sendkit-async[jobs]'``: arq and redis)::

    from sendkit_async.jobs import JsonLinesSink, enqueue_run, worker_settings

    settings = worker_settings(sink=JsonLinesSink("out"))   # arq mymodule.settings
    await enqueue_run(["acme", "globex"], redis_url="redis://...")

Jobs carry a key reference (a name), never a key: each worker resolves it from
its own configuration (``SENDKIT_KEY_<NAME>`` or a mapping). Every worker using
a key shares that key's :class:`~sendkit_async.redis_limiter.RedisRateLimiter`
budget. Importing :mod:`sendkit_async` alone never imports arq.

Raises:
    MissingDependencyError: on import, when arq (the ``jobs`` extra) is not installed.
"""

from ._config import (
    DEFAULT_QUEUE,
    REDIS_TIMEOUT,
    ChunkAbandonedError,
    JobsConfig,
    QueueUnavailableError,
    RunTimeoutError,
)
from ._enqueue import RunInfo, RunStatus, enqueue_run, run_status, wait_for_run
from ._keys import KeyResolver
from ._sinks import (
    CallbackSink,
    ChunkOutput,
    JsonLinesSink,
    ParquetSink,
    Row,
    Sink,
    read_jsonl_run,
)
from ._worker import run_worker, worker_settings

__all__ = [
    "DEFAULT_QUEUE",
    "REDIS_TIMEOUT",
    "CallbackSink",
    "ChunkAbandonedError",
    "ChunkOutput",
    "JobsConfig",
    "JsonLinesSink",
    "KeyResolver",
    "ParquetSink",
    "QueueUnavailableError",
    "Row",
    "RunInfo",
    "RunStatus",
    "RunTimeoutError",
    "Sink",
    "enqueue_run",
    "read_jsonl_run",
    "run_status",
    "run_worker",
    "wait_for_run",
    "worker_settings",
]
