"""Retry policy: a frozen description turned into a fresh tenacity loop per call.

A shared ``AsyncRetrying`` keeps per-run state and corrupts it under
concurrency, so :meth:`RetryPolicy.retrying` builds a new one every call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import tenacity

from . import errors

__all__ = ["IDEMPOTENT_METHODS", "Deadline", "RetryPolicy"]

logger = logging.getLogger("sendkit_async")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods safe to send again; anything else is never retried (the API has no idempotency key)."""

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class RetryPolicy:
    """How a call retries.

    Attributes:
        max_retries: retries after the first attempt (0 disables retrying).
        backoff_base: first backoff ceiling in seconds; doubles per retry (full jitter).
        backoff_max: the backoff ceiling's cap in seconds.
        max_wait: longest server-requested wait (Retry-After) we sleep through; a
            longer one raises :class:`RateLimitError` at once, with ``retry_after``.
        deadline: seconds one call may take, attempts and retry waits included
            (time queued in the rate limiter is not counted); None for no deadline.
        retry_statuses: the statuses worth another attempt.
    """

    max_retries: int = attrs.field(default=4, validator=_non_negative)
    backoff_base: float = attrs.field(default=0.5, validator=_non_negative)
    backoff_max: float = attrs.field(default=8.0, validator=_non_negative)
    max_wait: float = attrs.field(default=60.0, validator=_non_negative)
    deadline: float | None = attrs.field(default=120.0, validator=_non_negative)
    retry_statuses: frozenset[int] = attrs.field(default=RETRY_STATUSES, converter=frozenset)

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt (never a cancellation or a final 4xx)."""
        if isinstance(exc, errors.APIStatusError):
            return exc.status in self.retry_statuses
        return isinstance(exc, errors.APIConnectionError) and not isinstance(exc, _DeadlineError)

    def retrying(
        self,
        *,
        method: str,
        deadline: Deadline,
        on_retry: Callable[[tenacity.RetryCallState], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> tenacity.AsyncRetrying:
        """A fresh tenacity loop for one call of ``method``."""
        attempts = self.max_retries + 1 if method.upper() in IDEMPOTENT_METHODS else 1
        backoff = tenacity.wait_random_exponential(
            multiplier=self.backoff_base, max=self.backoff_max
        )

        def wait(state: tenacity.RetryCallState) -> float:
            server = _server_wait(state)
            return server if server is not None else float(backoff(state))

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= attempts:
                return True
            server = _server_wait(state)
            if server is not None and server > self.max_wait:
                return True
            return state.upcoming_sleep > deadline.remaining()

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            logger.info(
                "retrying %s in %.2fs after attempt %d: %s",
                method,
                state.upcoming_sleep,
                state.attempt_number,
                exc,
            )
            if on_retry is not None:
                on_retry(state)

        return tenacity.AsyncRetrying(
            sleep=sleep,
            stop=stop,
            wait=wait,
            retry=tenacity.retry_if_exception(self.should_retry),
            before_sleep=before_sleep,
            reraise=True,
        )


def _server_wait(state: tenacity.RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome else None
    return getattr(exc, "retry_after", None)


class _DeadlineError(errors.APITimeoutError):
    """The call's own deadline ran out: final, never retried."""


class Deadline:
    """The time budget of one call, which time spent queued can extend."""

    __slots__ = ("_clock", "_end", "_total")

    def __init__(self, seconds: float | None, *, clock: Callable[[], float] = time.monotonic):
        self._total = seconds
        self._end = None if seconds is None else clock() + seconds
        self._clock = clock

    def remaining(self) -> float:
        """Seconds left (infinite without a deadline)."""
        if self._end is None:
            return float("inf")
        return self._end - self._clock()

    def extend(self, seconds: float) -> None:
        """Push the end back, e.g. by the time spent waiting for the rate limiter."""
        if self._end is not None:
            self._end += seconds

    def attempt_timeout(self, per_attempt: float | None, method: str, url: object) -> float | None:
        """The timeout for the next attempt: the smaller of ``per_attempt`` and what is left.

        Raises:
            APITimeoutError: nothing is left.
        """
        if self._end is None:
            return per_attempt
        left = self._end - self._clock()
        if left <= 0:
            raise _DeadlineError(
                f"call deadline of {self._total}s exceeded for {method} {url}",
                method=method,
                url=str(url),
            )
        return left if per_attempt is None or left < per_attempt else per_attempt
