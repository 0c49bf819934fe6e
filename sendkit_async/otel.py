"""OpenTelemetry traces and metrics for sendkit-async, built on its :class:`~sendkit_async.Hooks`.

Needs the ``otel`` extra (``opentelemetry-api``); importing ``sendkit_async`` never
imports this module. Nothing is recorded until a client is given the hooks::

    client = AsyncSendKit(hooks=OpenTelemetryHooks())

Traces: a span per call (``INTERNAL``, named ``"GET /v1/analytics/campaigns/{id}"``)
with a ``CLIENT`` child span per attempt, following the HTTP client semantic
conventions: ``http.request.method``, ``url.full`` (the key is a header, never in
it), ``url.template``, ``server.address``, ``server.port``,
``http.response.status_code``, ``http.request.resend_count`` on retries and
``error.type`` on failure; a failed attempt, and a call that fails in the end, get
status ERROR.

Metrics: ``http.client.request.duration`` (s, per attempt),
``http.client.active_requests`` (attempts in flight), ``sendkit.client.requests``
(attempts sent), ``sendkit.client.retries``, ``sendkit.client.rate_limited`` (429
answers) and ``sendkit.client.throttle.duration`` (s, the client's own waits, by
``sendkit.throttle.cause``).
"""

from __future__ import annotations

import asyncio

from opentelemetry import metrics, trace
from opentelemetry.util.types import AttributeValue

from ._hooks import (
    Call,
    CallEndEvent,
    Hooks,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    ThrottleEvent,
)
from ._version import __version__

__all__ = ["OpenTelemetryHooks"]

_SCOPE = "sendkit_async"
# The HTTP semantic conventions' advisory buckets for request durations, in seconds.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

Attributes = dict[str, AttributeValue]


class _CallSpans:
    """One call's span, its open attempt span, and the attributes every metric shares."""

    __slots__ = ("active", "attempt", "base", "span")

    def __init__(self, span: trace.Span, base: Attributes) -> None:
        self.span = span
        self.base = base
        # http.client.active_requests: the conventions' attributes, without url.template
        self.active = {k: v for k, v in base.items() if k != "url.template"}
        self.attempt: trace.Span | None = None


class OpenTelemetryHooks(Hooks):
    """Hooks that record spans and metrics through OpenTelemetry.

    Args:
        tracer_provider: default: the global one (``opentelemetry.trace``).
        meter_provider: default: the global one (``opentelemetry.metrics``).

    With the API alone (no SDK configured), both are no-ops: cheap, and nothing is
    exported. The hooks hold state only for calls in progress.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider)
        self._duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests (one per attempt).",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._active = meter.create_up_down_counter(
            "http.client.active_requests",
            unit="{request}",
            description="HTTP requests (attempts) in flight.",
        )
        self._requests = meter.create_counter(
            "sendkit.client.requests", unit="{request}", description="HTTP attempts sent."
        )
        self._retries = meter.create_counter(
            "sendkit.client.retries", unit="{retry}", description="Attempts that will be retried."
        )
        self._rate_limited = meter.create_counter(
            "sendkit.client.rate_limited",
            unit="{response}",
            description="Responses with status 429.",
        )
        self._throttle = meter.create_histogram(
            "sendkit.client.throttle.duration",
            unit="s",
            description="Time calls waited for the rate limit, its cooldown or the overload guard.",
            explicit_bucket_boundaries_advisory=_WAIT_BUCKETS,
        )
        self._calls: dict[Call, _CallSpans] = {}

    def on_call_start(self, call: Call) -> None:
        base: Attributes = {
            "http.request.method": call.method,
            "server.address": call.host,
            "url.template": call.route,
        }
        if call.port is not None:
            base["server.port"] = call.port
        span = self._tracer.start_span(
            f"{call.method} {call.route}",
            kind=trace.SpanKind.INTERNAL,
            attributes={**base, "url.full": call.url},
        )
        self._calls[call] = _CallSpans(span, base)

    def on_request(self, event: RequestEvent) -> None:
        spans = self._calls.get(event.call)
        if spans is None:
            return
        call = event.call
        attributes: Attributes = {**spans.base, "url.full": call.url}
        if event.attempt > 1:
            attributes["http.request.resend_count"] = event.attempt - 1
        spans.attempt = self._tracer.start_span(
            f"{call.method} {call.route}",
            context=trace.set_span_in_context(spans.span),
            kind=trace.SpanKind.CLIENT,
            attributes=attributes,
        )
        self._active.add(1, spans.active)
        self._requests.add(1, spans.base)

    def on_response(self, event: ResponseEvent) -> None:
        spans = self._calls.get(event.call)
        if spans is None:
            return
        self._active.add(-1, spans.active)
        attributes = dict(spans.base)
        error_type = None
        if event.status is not None:
            attributes["http.response.status_code"] = event.status
            if event.status >= 400:
                error_type = str(event.status)
            if event.status == 429:
                self._rate_limited.add(1, spans.base)
        elif event.error is not None:
            error_type = _qualified(event.error)
        if error_type is not None:
            attributes["error.type"] = error_type
        self._duration.record(event.elapsed, attributes)
        span, spans.attempt = spans.attempt, None
        if span is None:
            return
        if event.status is not None:
            span.set_attribute("http.response.status_code", event.status)
        if event.request_id is not None:
            span.set_attribute("sendkit.request_id", event.request_id)
        if error_type is not None:
            span.set_attribute("error.type", error_type)
            if not isinstance(event.error, asyncio.CancelledError):
                span.set_status(trace.StatusCode.ERROR)
        span.end()

    def on_retry(self, event: RetryEvent) -> None:
        spans = self._calls.get(event.call)
        if spans is None:
            return
        self._retries.add(1, {**spans.base, "error.type": event.reason})
        spans.span.add_event(
            "retry",
            {"sendkit.retry.attempt": event.attempt, "sendkit.retry.wait": event.wait,
             "error.type": event.reason},
        )  # fmt: skip

    def on_throttle(self, event: ThrottleEvent) -> None:
        spans = self._calls.get(event.call)
        attributes: Attributes = {"sendkit.throttle.cause": event.cause}
        self._throttle.record(event.wait, attributes)
        if spans is not None:
            spans.span.add_event(
                "throttle",
                {"sendkit.throttle.cause": event.cause, "sendkit.throttle.wait": event.wait},
            )

    def on_call_end(self, event: CallEndEvent) -> None:
        spans = self._calls.pop(event.call, None)
        if spans is None:
            return
        if spans.attempt is not None:  # never answered: the hooks' contract ends it first
            spans.attempt.end()
        span = spans.span
        if event.status is not None:
            span.set_attribute("http.response.status_code", event.status)
        span.set_attribute("sendkit.attempts", event.attempts)
        error = event.error
        if isinstance(error, asyncio.CancelledError):
            span.set_attribute("error.type", _qualified(error))
        elif error is not None:
            status = getattr(error, "status", None)
            span.set_attribute(
                "error.type", str(status) if isinstance(status, int) else _qualified(error)
            )
            span.set_status(trace.StatusCode.ERROR, type(error).__name__)
        span.end()


def _qualified(error: BaseException) -> str:
    cls = type(error)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
