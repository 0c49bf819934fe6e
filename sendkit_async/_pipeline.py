"""One call through the pipeline every request takes, over a client's shared :class:`Core`.

budget (slot, cooldown gate, tokens) -> transport (one attempt) -> protocol
(hints, errors), then the caller's ``read`` (envelope, models); a fresh
tenacity loop only once a first attempt has failed and may be retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar, cast

from yarl import URL

from . import _protocol as protocol
from . import errors
from ._core import Core
from ._hooks import Dispatch, ThrottleCause, _Tracker
from ._ratelimit import sent_in_this_task
from ._retry import Deadline, RetryPolicy
from ._transport import RawResponse

__all__ = ["as_is", "attempt", "data_reader", "read_envelope"]

T = TypeVar("T")

logger = logging.getLogger("sendkit_async")

THROTTLE_LOG_SECONDS = 0.05
"""Waits for the rate-limit budget at least this long are logged (INFO)."""


# -- readers: what a call makes of its 2xx answer ---------------------------------------


def as_is(raw: RawResponse) -> RawResponse:
    """The answer itself."""
    return raw


def read_envelope(raw: RawResponse) -> Mapping[str, Any]:
    """The whole checked envelope (for paged lists)."""
    return protocol.parse_envelope(raw.status, raw.body)


def data_reader(cls: type[T]) -> Callable[[RawResponse], T]:
    """A reader that checks the envelope and structures its ``data`` as ``cls``."""
    read = _readers.get(cls)
    if read is None:

        def read(raw: RawResponse) -> Any:
            envelope = protocol.parse_envelope(raw.status, raw.body)
            return protocol.structure_field(envelope, "data", cls, status=raw.status)

        _readers[cls] = read
    return read


_readers: dict[Any, Callable[[RawResponse], Any]] = {}


# -- attempts ---------------------------------------------------------------------------


async def attempt(
    core: Core,
    method: str,
    url: URL,
    read: Callable[[RawResponse], T],
    deadline: Deadline,
    per_attempt: float | None,
    policy: RetryPolicy | None,
    retry: bool = False,
    call: _Tracker | None = None,
) -> T:
    """One attempt: admitted by the guard and the budget, sent, observed, checked, ``read``.

    The call's first attempt gets its ``policy``: a retryable failure moves on
    to the retry loop. Attempts made there get None and raise every failure.
    With hooks installed, the call's first attempt starts a ``call`` tracker that
    every later step reports to; without, nothing here costs more than that check.

    Raises:
        SendKitError: the final error, with ``attempts`` set.
        ClientClosedError: the client was closed before or during the call (nothing is
            retried after that), or is bound to another event loop.
    """
    if (hooks := core.hooks) is not None and call is None:
        return await _observed(core, hooks, method, url, read, deadline, per_attempt, policy)
    life = core.life
    if life.loop is not (loop := asyncio.get_running_loop()):
        life.bind(loop)  # the first call binds; any other loop is refused
    guard = core.guard
    try:
        probe = False
        if retry or guard.open:
            probe = await _admit(core, retry, deadline, call)  # an outage, or a retry: may wait
        else:
            guard.deposit()
        recorded = False
        try:
            # Our own limiter admits a request that needs no wait synchronously (nearly
            # every request of a bulk run); anything else goes through ``slot()``.
            sent_at = core.admit_now() if core.admit_now is not None else None
            slot = (
                None
                if sent_at is not None
                else await _wait_for_slot(core, deadline, method, url, call)
            )
            while guard.open and not probe:
                # The circuit opened while this request queued for the budget: do not
                # send it into the outage; wait with the others, then queue again.
                if slot is not None:
                    await slot.__aexit__(None, None, None)
                elif sent_at is not None:
                    core.release_admitted(sent_at)
                sent_at = slot = None
                probe = await _admit(core, retry, deadline, call)
                slot = await _wait_for_slot(core, deadline, method, url, call)
            try:
                attempt_timeout = deadline.attempt_timeout(per_attempt, method, url)
                core.stats.requests += 1
                if call is not None:
                    call.request()
                try:
                    raw = await core.transport.request(method, url, timeout=attempt_timeout)
                except errors.APIConnectionError as exc:
                    if call is not None:
                        call.response(None, None, exc)
                    if life.closed:  # our own close ended it: no fault of the API's
                        raise _closed("while the request was in flight") from exc
                    core.stats.connection_errors += 1
                    recorded = True
                    if guard.record(None, probe, type(exc).__name__):
                        exc._free = True  # type: ignore[attr-defined]
                    raise
                except BaseException as exc:
                    if call is not None:
                        call.response(None, None, exc)
                    raise
                recorded = True
                if call is not None:
                    call.response(raw.status, raw.headers)
                free = guard.record(raw.status, probe)
                # Still admitted: the limiter corrects `remaining` by what is in flight.
                _observe(core, raw, method, url)
            except BaseException as exc:
                if slot is not None:
                    await slot.__aexit__(type(exc), exc, exc.__traceback__)
                elif sent_at is not None:
                    core.release_admitted(sent_at)
                raise
            if slot is not None:
                await slot.__aexit__(None, None, None)
            elif sent_at is not None:
                core.release_admitted(sent_at)
        except BaseException:
            if probe and not recorded:
                guard.lost_probe()  # never answered: another request probes instead
            raise
        if not 200 <= raw.status < 300:
            error = protocol.error_from_response(
                raw.status, raw.headers, raw.body, method=method, url=str(url)
            )
            if free:
                error._free = True  # type: ignore[attr-defined]
            raise error
    except errors.SendKitError as exc:
        if policy is None:
            raise
        if not policy.should_retry(exc):
            exc.attempts = 0 if getattr(exc, "_unsent", False) else 1
            raise
        if life.closed:
            closed = _closed("before its retry")
            closed.attempts = 1
            raise closed from exc
        raw = await _retry(core, exc, policy, method, url, deadline, per_attempt, call)
    return read(raw)


async def _observed(
    core: Core,
    hooks: Dispatch,
    method: str,
    url: URL,
    read: Callable[[RawResponse], T],
    deadline: Deadline,
    per_attempt: float | None,
    policy: RetryPolicy | None,
) -> T:
    """A call with hooks installed: :func:`attempt` with a tracker, started and ended here."""
    call = _Tracker(hooks, method, url, core.clock, core.transport._secrets)
    try:
        result = await attempt(core, method, url, read, deadline, per_attempt, policy, False, call)
    except BaseException as exc:
        call.end(exc)
        raise
    call.end(None)
    return result


async def _admit(core: Core, retry: bool, deadline: Deadline, call: _Tracker | None) -> bool:
    """The overload guard's ``admit``; a wait there is reported to the hooks."""
    if call is None:
        return await core.guard.admit(retry, deadline.remaining)
    waiting = core.clock()
    try:
        return await core.guard.admit(retry, deadline.remaining)
    finally:
        call.throttled(core.clock() - waiting, "overload")


async def _retry(
    core: Core,
    first_failure: errors.SendKitError,
    policy: RetryPolicy,
    method: str,
    url: URL,
    deadline: Deadline,
    per_attempt: float | None,
    call: _Tracker | None = None,
) -> RawResponse:
    """Attempts after a retryable first failure, in a fresh tenacity loop.

    The loop's first attempt is the failure already seen, so waits, stops
    (max_retries, max_wait, deadline) and logging are tenacity's own. A failure
    the guard called free (the server was failing everything) uses up no retry
    while the call is younger than its deadline.
    """
    total = policy.deadline

    def is_free(exc: BaseException) -> bool:
        return getattr(exc, "_free", False) and (total is None or deadline.age() < total)

    retrying = policy.retrying(
        method=method,
        deadline=deadline,
        on_retry=core.count_retry if call is None else call.retrying(core.count_retry),
        sleep=lambda seconds: _unless_closed(core, core.sleep(seconds)),
        is_free=is_free,
    )
    attempts = 0
    try:
        async for attempt_state in retrying:
            with attempt_state:
                attempts += 1
                if attempts == 1:
                    raise first_failure
                return await attempt(
                    core, method, url, as_is, deadline, per_attempt, None, True, call
                )
    except errors.SendKitError as exc:
        exc.attempts = attempts
        raise
    raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover


async def _wait_for_slot(
    core: Core, deadline: Deadline, method: str, url: URL, call: _Tracker | None = None
) -> AbstractAsyncContextManager[None]:
    """Enter the budget's ``slot()``, which the caller exits; queuing extends ``deadline``.

    The wait ends at once when the client closes, and is bounded by the call's
    ``max_gate`` (one wait at the closed gate) and ``max_queue`` (all its queueing).

    Raises:
        RateLimitError: not sent: the call would queue longer than a bound allows.
        ClientClosedError: the client was closed meanwhile.
    """
    limiter = core.limiter
    left = None if deadline.max_queue is None else deadline.max_queue - deadline.queued
    gate = limiter.snapshot().cooldown_remaining
    if gate > 0.0 and (gate > deadline.max_gate or (left is not None and gate > left)):
        bound = "max_wait" if gate > deadline.max_gate else "max_queue"
        why = f"the rate limit's gate is closed for {gate:.2f}s, longer than {bound}"
        raise _not_sent(why, gate, method, url)
    if left is not None and left <= 0.0:
        raise _not_sent(_QUEUED_OUT, None, method, url)
    # Its slot() may take the priority (RateBudget's does not have to).
    slot: AbstractAsyncContextManager[None] = (
        cast(Any, limiter).slot(priority=core.priority) if core.prioritized else limiter.slot()
    )
    queued = core.clock()
    entering = asyncio.ensure_future(slot.__aenter__())
    try:
        await _unless_closed(core, entering, left)
    except asyncio.CancelledError:
        # Cancelled in the step the slot was granted: nobody else will leave it.
        if entering.done() and not entering.cancelled() and entering.exception() is None:
            await slot.__aexit__(None, None, None)
        raise
    except _TimedOut:
        gate = limiter.snapshot().cooldown_remaining
        raise _not_sent(_QUEUED_OUT, gate or None, method, url) from None
    finally:
        # Time queued for a slot or a token does not count against the call.
        waited = core.clock() - queued
        deadline.extend(waited)
        if call is not None:
            cause: ThrottleCause = "cooldown" if gate > 0.0 else "rate_limit"
            call.throttled(waited, cause)
    if core.life.closed:
        await slot.__aexit__(None, None, None)
        raise _closed("while the call queued for the rate limit")
    if waited >= THROTTLE_LOG_SECONDS:
        logger.info("throttled %.2fs by the rate-limit budget before %s %s", waited, method, url)
    sent_in_this_task(slot)  # it was entered in a task of its own
    return slot


class _TimedOut(Exception):
    """:func:`_unless_closed`'s ``limit`` ran out first."""


_QUEUED_OUT = "the call has queued max_queue seconds for the rate limit"


async def _unless_closed(core: Core, waiting: Awaitable[T], limit: float | None = None) -> T:
    """Await ``waiting``, unless the client closes first or ``limit`` seconds pass.

    The client's own waits race its close signal here, so a limiter (perhaps one
    shared by processes) need not know about clients. ``waiting`` is cancelled
    unless it finished first.

    Raises:
        ClientClosedError: the client closed first.
        _TimedOut: ``limit`` ran out first.
    """
    task = asyncio.ensure_future(waiting)
    signal = core.life.signal()
    timer = None if limit is None else asyncio.ensure_future(core.sleep(limit))
    try:
        await asyncio.wait(
            (task, signal) if timer is None else (task, signal, timer),
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        core.life.forget(signal)
        for pending in (task, timer):
            if pending is not None and not pending.done():
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
    if not task.cancelled():
        return task.result()  # done, even if the other finished too: the caller decides
    if signal.done():
        raise _closed("while the call waited")
    if timer is not None and timer.done():
        raise _TimedOut
    return task.result()  # cancelled by someone else: CancelledError


def _closed(when: str) -> errors.ClientClosedError:
    return errors.ClientClosedError(f"the client was closed {when}")


def _not_sent(why: str, retry_after: float | None, method: str, url: URL) -> errors.RateLimitError:
    """A final (never retried) 429 of our own: the call was not sent."""
    error = errors.RateLimitError(
        f"not sent: {why}", status=429, retry_after=retry_after, method=method, url=str(url)
    )
    error._final = error._unsent = True  # type: ignore[attr-defined]
    return error


def _observe(core: Core, raw: RawResponse, method: str, url: URL) -> None:
    """Count the response and feed its rate-limit hints to the budget."""
    stats = core.stats
    stats.by_status[raw.status] = stats.by_status.get(raw.status, 0) + 1
    hints = protocol.rate_limit_hints(raw.headers, status=raw.status)
    if raw.status == 429:
        stats.rate_limited += 1
        logger.info(
            "rate limited (429) on %s %s [request id %s]; server asked to wait %s",
            method,
            url,
            protocol.request_id(raw.headers) or "-",
            "nothing" if hints.retry_after is None else f"{hints.retry_after:.2f}s",
        )
    if hints is protocol.NO_HINTS:
        core.limiter.observe(raw.status)
        return
    core.limiter.observe(
        raw.status,
        limit=hints.limit,
        remaining=hints.remaining,
        reset_after=hints.reset_after,
        window=hints.window,
        retry_after=hints.retry_after,
    )
