"""Retry policy: a frozen description turned into a fresh tenacity loop per call.

A shared ``AsyncRetrying`` keeps per-run state and corrupts it under
concurrency, so :meth:`RetryPolicy.retrying` builds a new one every call.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random as _random
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
        raise errors.ConfigurationError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class RetryPolicy:
    """How a call retries.

    Throttles (429) and faults (5xx, timeouts, resets, refused connections) back off
    differently: a 429 waits for the server's ``Retry-After`` (the shared gate of the
    rate limiter holds every other request too), else ``backoff_base * 2**n``; a fault
    is this request's own business and retries fast, after ``fault_backoff_base *
    2**n`` (capped at ``fault_backoff_max``) or the server's ``Retry-After`` if longer,
    while the others go on.

    Attributes:
        max_retries: retries after the first attempt (0 disables retrying). Attempts
            that fail while the server fails everything (an outage probe, a run of
            429s) are not counted while the call is younger than ``deadline``.
        backoff_base: first backoff ceiling after a 429 without a server wait, in
            seconds; doubles per retry (full jitter), capped at ``backoff_max``.
        backoff_max: the 429 backoff ceiling's cap in seconds.
        fault_backoff_base: first backoff after a fault, in seconds (equal jitter:
            between half and all of ``fault_backoff_base * 2**n``).
        fault_backoff_max: the fault backoff's cap in seconds.
        max_wait: longest server-requested wait (Retry-After) we sleep through, and
            longest the call waits at the rate limiter's closed gate; a longer one
            raises :class:`RateLimitError` at once, with ``retry_after``.
        deadline: seconds one call may take, attempts and retry waits included
            (time queued in the rate limiter is not counted); None for no deadline.
        retry_statuses: the statuses worth another attempt.
        max_queue: seconds one call may spend queued for the rate-limit budget
            (concurrency slot, cooldown gate, tokens), all its attempts together; a
            call that would queue longer raises :class:`RateLimitError` (not sent,
            ``status`` 429, ``retry_after`` the gate's remaining cooldown when known,
            else None) and is not retried. None (default): queueing is not bounded
            here, as bulk runs want; a web handler may want a few seconds.
    """

    max_retries: int = attrs.field(default=4, validator=_non_negative)
    backoff_base: float = attrs.field(default=0.5, validator=_non_negative)
    backoff_max: float = attrs.field(default=8.0, validator=_non_negative)
    max_wait: float = attrs.field(default=60.0, validator=_non_negative)
    deadline: float | None = attrs.field(default=120.0, validator=_non_negative)
    retry_statuses: frozenset[int] = attrs.field(default=RETRY_STATUSES, converter=frozenset)
    fault_backoff_base: float = attrs.field(default=0.025, validator=_non_negative)
    fault_backoff_max: float = attrs.field(default=1.0, validator=_non_negative)
    max_queue: float | None = attrs.field(default=None, validator=_non_negative)

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt (never a cancellation or a final 4xx)."""
        if getattr(exc, "_final", False):  # e.g. refused before sending: waits too long
            return False
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
        is_free: Callable[[BaseException], bool] | None = None,
        random: Callable[[], float] = _random.random,
    ) -> tenacity.AsyncRetrying:
        """A fresh tenacity loop for one call of ``method``.

        ``is_free(exc)`` tells a failure that does not use up a retry.
        """
        idempotent = method.upper() in IDEMPOTENT_METHODS
        attempts = self.max_retries + 1 if idempotent else 1
        charged = 0

        def wait(state: tenacity.RetryCallState) -> float:
            nonlocal charged
            exc = state.outcome.exception() if state.outcome else None
            if exc is None or is_free is None or not is_free(exc):
                charged += 1
            server = _server_wait(state)
            # Exponents count charged failures only: an outage's free probes do not push
            # a request's backoff beyond what one isolated failure would.
            doubling = 2.0 ** min(max(charged, 1) - 1, 30)
            if isinstance(exc, errors.APIStatusError) and exc.status == 429:
                if server is not None:
                    return server
                return random() * min(self.backoff_max, self.backoff_base * doubling)
            ceiling = min(self.fault_backoff_max, self.fault_backoff_base * doubling)
            own = ceiling * (0.5 + 0.5 * random())
            return own if server is None or server < own else server

        def stop(state: tenacity.RetryCallState) -> bool:
            if charged >= attempts or not idempotent:
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
    """The time budget of one call, which time spent queued can extend.

    It also carries the call's bounds on queueing for the rate-limit budget:
    ``max_gate`` for one wait at the closed gate (the policy's ``max_wait``) and
    ``max_queue`` for all of the call's queueing together (:attr:`queued` so far).
    """

    __slots__ = ("_clock", "_end", "_start", "_total", "max_gate", "max_queue", "queued")

    def __init__(
        self,
        seconds: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_gate: float = math.inf,
        max_queue: float | None = None,
    ):
        self._total = seconds
        self._start = clock()
        self._end = None if seconds is None else self._start + seconds
        self._clock = clock
        self.max_gate = max_gate
        self.max_queue = max_queue
        self.queued = 0.0

    def age(self) -> float:
        """Seconds since the call started, time queued included."""
        return self._clock() - self._start

    def remaining(self) -> float:
        """Seconds left (infinite without a deadline)."""
        if self._end is None:
            return float("inf")
        return self._end - self._clock()

    def extend(self, seconds: float) -> None:
        """Push the end back by time spent queued for the rate limiter (and count it)."""
        self.queued += seconds
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
