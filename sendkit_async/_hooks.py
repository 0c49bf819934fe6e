"""Hooks: what a client tells user code about each call, attempt, retry and throttle.

A :class:`Hooks` object (or several) passed as ``AsyncSendKit(hooks=...)`` is
called synchronously, inline, with small frozen events. The request pipeline
keeps one :class:`_Tracker` per call only while hooks are installed; with none
it checks a single attribute. Events carry the method, a URL without user
info (the key travels in a header, never in an event), statuses, attempt
numbers and times from the client's clock; never a header.

A hook that raises is logged (logger ``sendkit_async``, with the traceback)
and the call goes on as if it had not been there.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs
from yarl import URL

from . import errors
from ._protocol import request_id as read_request_id
from ._transport import MASK

__all__ = [
    "Call",
    "CallEndEvent",
    "Hooks",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    "ThrottleEvent",
]

logger = logging.getLogger("sendkit_async")

ThrottleCause = Literal["rate_limit", "cooldown", "overload"]


@attrs.frozen(eq=False)  # compared and hashed by identity: a key for a hook's per-call state
class Call:
    """One call of the client (a method on a resource), with all its attempts.

    Attributes:
        method: the HTTP method.
        url: the full URL, without user info (the key is never part of it).
        route: the path with ids replaced by ``{id}``, e.g.
            ``/v1/analytics/campaigns/{id}``: a low-cardinality name for metrics and spans.
        host: the server's host name.
        port: the server's port (explicit or the scheme's default).
    """

    method: str
    url: str
    route: str
    host: str
    port: int | None


@attrs.frozen
class RequestEvent:
    """An attempt is about to be sent (after the rate limiter admitted it).

    ``attempt`` counts from 1; a retry is attempt 2 and on.
    """

    call: Call
    attempt: int


@attrs.frozen
class ResponseEvent:
    """An attempt ended: answered (``status``) or not (``status`` None, ``error`` why).

    ``elapsed`` is the attempt's own seconds (client clock); ``request_id`` the
    server's request id header, when it sent one. ``error`` is also set when the
    attempt was cancelled or the client closed while it was in flight.
    """

    call: Call
    attempt: int
    status: int | None
    elapsed: float
    request_id: str | None = None
    error: BaseException | None = None


@attrs.frozen
class RetryEvent:
    """Attempt ``attempt`` failed with ``error``; the next is sent after ``wait`` seconds."""

    call: Call
    attempt: int
    wait: float
    error: BaseException

    @property
    def reason(self) -> str:
        """The failure in short: the status (``"429"``, ``"503"``) or the error class name."""
        status = getattr(self.error, "status", None)
        return str(status) if isinstance(status, int) else type(self.error).__name__


@attrs.frozen
class ThrottleEvent:
    """The call waited ``wait`` seconds before an attempt, held back by the client itself.

    ``cause`` is ``"rate_limit"`` (a concurrency slot or the send rate),
    ``"cooldown"`` (the gate closed after a 429 / ``Retry-After``) or
    ``"overload"`` (the overload guard: an open fault circuit or the retry budget).
    """

    call: Call
    wait: float
    cause: ThrottleCause


@attrs.frozen
class CallEndEvent:
    """The call is over: ``error`` is None on success, else what it raised.

    ``status`` is the last answer's status (None if none came); ``attempts`` the
    attempts sent; ``elapsed`` the call's seconds, time queued included.
    """

    call: Call
    attempts: int
    elapsed: float
    status: int | None
    error: BaseException | None = None


class Hooks:
    """Base class of hooks: override any of the methods; the others cost nothing.

    Methods are called synchronously on the event loop of the call, in this order:
    ``on_call_start``, then per attempt any ``on_throttle`` waits, ``on_request``,
    ``on_response``, and ``on_retry`` before each retry's wait; ``on_call_end`` last,
    always (success, failure, cancellation). Keep them quick: to do I/O, hand the
    event to a queue or a task. Coroutine functions are refused.
    """

    def on_call_start(self, call: Call) -> None:
        """A call starts (before any wait)."""

    def on_request(self, event: RequestEvent) -> None:
        """An attempt is about to be sent."""

    def on_response(self, event: ResponseEvent) -> None:
        """An attempt ended, with or without an answer."""

    def on_retry(self, event: RetryEvent) -> None:
        """An attempt failed and will be retried after ``event.wait`` seconds."""

    def on_throttle(self, event: ThrottleEvent) -> None:
        """The call waited for the rate limit, its cooldown or the overload guard."""

    def on_call_end(self, event: CallEndEvent) -> None:
        """The call is over."""


_NAMES = ("on_call_start", "on_request", "on_response", "on_retry", "on_throttle", "on_call_end")


class Dispatch:
    """The installed hooks' overridden methods, per event kind (empty tuples cost nothing)."""

    __slots__ = _NAMES
    on_call_start: tuple[Callable[[Call], object], ...]
    on_request: tuple[Callable[[RequestEvent], object], ...]
    on_response: tuple[Callable[[ResponseEvent], object], ...]
    on_retry: tuple[Callable[[RetryEvent], object], ...]
    on_throttle: tuple[Callable[[ThrottleEvent], object], ...]
    on_call_end: tuple[Callable[[CallEndEvent], object], ...]

    def __init__(self, hooks: Sequence[object]) -> None:
        for name in _NAMES:
            found = []
            for hook in hooks:
                method = getattr(hook, name, None)
                if method is None or getattr(type(hook), name, None) is getattr(Hooks, name):
                    continue  # not overridden: never called
                if not callable(method):
                    raise errors.ConfigurationError(f"hooks: {name} of {hook!r} is not callable")
                if inspect.iscoroutinefunction(method):
                    raise errors.ConfigurationError(
                        f"hooks: {name} must be a plain function, not async (hooks run inline)"
                    )
                found.append(method)
            setattr(self, name, tuple(found))

    def any(self) -> bool:
        return any(getattr(self, name) for name in _NAMES)


def as_dispatch(hooks: Hooks | Sequence[Hooks] | None) -> Dispatch | None:
    """The :class:`Dispatch` of ``hooks``; None when nothing would ever be called.

    Raises:
        ConfigurationError: an object without any hook method, or an async one.
    """
    if hooks is None:
        return None
    listed = list(hooks) if isinstance(hooks, Sequence) else [hooks]
    for hook in listed:
        if not isinstance(hook, Hooks) and not any(hasattr(hook, n) for n in _NAMES):
            raise errors.ConfigurationError(f"hooks: {hook!r} has none of the hook methods")
    dispatch = Dispatch(listed)
    return dispatch if dispatch.any() else None


def _emit(methods: tuple[Callable[[Any], object], ...], event: object) -> None:
    for method in methods:
        try:
            method(event)
        except Exception:
            # The hook's own exception: it never saw the key, so its traceback holds none.
            logger.exception(
                "hook %s failed; the call goes on", getattr(method, "__qualname__", method)
            )


def route_of(path: str) -> str:
    """``path`` with each segment after ``campaigns`` (an id) replaced by ``{id}``."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        if parts[i - 1] == "campaigns" and parts[i]:
            parts[i] = "{id}"
    return "/".join(parts)


class _Tracker:
    """One call's hook bookkeeping (exists only while hooks are installed)."""

    __slots__ = ("attempts", "call", "clock", "hooks", "secrets", "sent_at", "started", "status")

    def __init__(
        self,
        hooks: Dispatch,
        method: str,
        url: URL,
        clock: Callable[[], float],
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.hooks = hooks
        self.clock = clock
        self.secrets = secrets  # masked in what the server sends back (a request id)
        safe = url.with_user(None) if url.raw_user or url.raw_password else url
        self.call = Call(method, str(safe), route_of(url.path), url.host or "", url.port)
        self.attempts = 0
        self.status: int | None = None
        self.sent_at: float | None = None  # an attempt is in flight since then
        self.started = clock()
        if hooks.on_call_start:
            _emit(hooks.on_call_start, self.call)

    def request(self) -> None:
        self.attempts += 1
        self.sent_at = self.clock()
        if self.hooks.on_request:
            _emit(self.hooks.on_request, RequestEvent(self.call, self.attempts))

    def response(
        self,
        status: int | None,
        headers: Mapping[str, str] | None = None,
        error: BaseException | None = None,
    ) -> None:
        sent_at, self.sent_at = self.sent_at, None
        if sent_at is None:
            return
        if status is not None:
            self.status = status
        if self.hooks.on_response:
            request_id = None if headers is None else read_request_id(headers)
            if request_id is not None:
                for secret in self.secrets:  # a 2xx answer is not masked by the transport
                    request_id = request_id.replace(secret, MASK)
            elapsed = self.clock() - sent_at
            event = ResponseEvent(self.call, self.attempts, status, elapsed, request_id, error)
            _emit(self.hooks.on_response, event)

    def retrying(self, count: Callable[[Any], None]) -> Callable[[Any], None]:
        """The retry loop's ``on_retry``: ``count`` it, then tell the hooks."""

        def on_retry(state: Any) -> None:
            count(state)
            exc = state.outcome.exception() if state.outcome else None
            if self.hooks.on_retry and exc is not None:
                event = RetryEvent(self.call, state.attempt_number, state.upcoming_sleep, exc)
                _emit(self.hooks.on_retry, event)

        return on_retry

    def throttled(self, waited: float, cause: ThrottleCause) -> None:
        if waited > 0.0 and self.hooks.on_throttle:
            _emit(self.hooks.on_throttle, ThrottleEvent(self.call, waited, cause))

    def end(self, error: BaseException | None) -> None:
        if self.sent_at is not None:  # the attempt in flight ended with the call
            self.response(None, None, error)
        if self.hooks.on_call_end:
            elapsed = self.clock() - self.started
            event = CallEndEvent(self.call, self.attempts, elapsed, self.status, error)
            _emit(self.hooks.on_call_end, event)
