"""``JobsConfig`` (what a worker needs) and the names shared by the enqueuer and workers."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import attrs

from .._frames import require_extra
from ..errors import ConfigurationError, SendKitError
from ._keys import KeyResolver
from ._sinks import Sink

# The package imports this module first: without arq, importing sendkit_async.jobs is
# a MissingDependencyError naming the extra, not arq's bare ImportError from a later module.
require_extra("arq", "jobs", "sendkit_async.jobs")

__all__ = [
    "DEFAULT_QUEUE",
    "DEFAULT_REDIS_URL",
    "REDIS_TIMEOUT",
    "TASK_NAME",
    "ChunkAbandonedError",
    "JobsConfig",
    "QueueUnavailableError",
    "RunTimeoutError",
    "chunk_job_id",
    "redis_url_from_env",
    "run_key",
]

TASK_NAME = "sendkit_fetch_chunk"
DEFAULT_QUEUE = "sendkit:jobs:queue"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
RUN_PREFIX = "sendkit:jobs:run:"
REDIS_TIMEOUT = 10.0
"""Seconds any one Redis call of the job queue may take (connect, read or write)."""


class ChunkAbandonedError(SendKitError):
    """A chunk used up its tries (crashes, shutdowns, timeouts): its ids are recorded failed."""


class QueueUnavailableError(SendKitError):
    """The job queue's Redis did not answer within ``redis_timeout`` seconds, or refused."""


class RunTimeoutError(SendKitError):
    """:func:`wait_for_run` gave up before every chunk of the run was done."""


def redis_url_from_env(url: str | None) -> str:
    """``url``, else ``$SENDKIT_REDIS_URL``, else a local Redis."""
    return url or os.environ.get("SENDKIT_REDIS_URL") or DEFAULT_REDIS_URL


def chunk_job_id(run_id: str, key_ref: str, chunk: int) -> str:
    """The arq job id of one chunk: the same chunk of the same run is one job, however
    often it is enqueued.

    The chunk number comes before the key: arq takes jobs enqueued in the same
    millisecond in the order of their ids, so the keys' chunks interleave and every
    key's budget is used from the start instead of one key's chunks filling the workers.
    """
    return f"sendkit:{run_id}:{chunk:06d}:{key_ref}"


def run_key(run_id: str, part: str) -> str:
    """A Redis key of a run's bookkeeping (``meta`` hash, ``chunks`` hash)."""
    return f"{RUN_PREFIX}{run_id}:{part}"


def _positive(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(f"{attribute.name} must be a number > 0, got {value!r}")
    if math.isinf(value):
        raise ConfigurationError(f"{attribute.name} must be finite")


def _resolver(value: KeyResolver | Mapping[str, str] | None) -> KeyResolver:
    return value if isinstance(value, KeyResolver) else KeyResolver(value)


@attrs.frozen(kw_only=True)
class JobsConfig:
    """Everything a worker needs besides arq's own settings (see :func:`worker_settings`).

    Raises:
        ConfigurationError: a value out of range.
    """

    sink: Sink
    keys: KeyResolver = attrs.field(factory=KeyResolver, converter=_resolver)
    redis_url: str = attrs.field(factory=lambda: redis_url_from_env(None), repr=False)
    base_url: str | None = None
    concurrency: int = attrs.field(default=16, validator=_positive)
    rate: float | None = None
    max_tries: int = attrs.field(default=5, validator=_positive)
    chunk_timeout: float = attrs.field(default=600.0, validator=_positive)
    lease: float = attrs.field(default=10.0, validator=_positive)
    retry_delay: float = attrs.field(default=1.0, validator=_positive)
    keep_run: float = attrs.field(default=7 * 86400.0, validator=_positive)
    redis_timeout: float = attrs.field(default=REDIS_TIMEOUT, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.sink, Sink):
            raise ConfigurationError(f"sink must have an async write(output), got {self.sink!r}")
