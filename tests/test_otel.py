"""OpenTelemetryHooks with the SDK's in-memory span exporter and metric reader."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from sendkit_async import APIConnectionError, AsyncSendKit, InternalServerError
from sendkit_async.otel import OpenTelemetryHooks
from tests.helpers import KEY, FakeClock, Script, fixture, run_python

OK = fixture("analytics_campaign_seed.json")
CID = "64f0c2a1b2c3d4e5f6a7b8c9"
ROUTE = "GET /v1/analytics/campaigns/{id}"
ROOT = Path(__file__).resolve().parent.parent


def ok() -> web.Response:
    return web.json_response(OK, headers={"X-Request-Id": "req-7"})


def fail(status: int, **headers: str) -> web.Response:
    body = {"error": "x", "message": "y", "code": status}
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
    return web.json_response(body, status=status, headers=hdrs)


class Telemetry:
    """An SDK tracer and meter provider that keep everything in memory."""

    def __init__(self) -> None:
        self.spans_out = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.hooks = OpenTelemetryHooks(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def spans(self) -> list[ReadableSpan]:
        return list(self.spans_out.get_finished_spans())

    def calls(self) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.kind is SpanKind.INTERNAL and _ours(s)]

    def attempts(self) -> list[ReadableSpan]:
        return sorted(
            (s for s in self.spans() if s.kind is SpanKind.CLIENT),
            key=lambda s: int(attrs_of(s).get("http.request.resend_count", 0)),
        )

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    telemetry = Telemetry()
    yield telemetry
    telemetry.close()


def _ours(span: ReadableSpan) -> bool:
    scope = span.instrumentation_scope
    return scope is not None and scope.name == "sendkit_async"


def client_for(server: Script, otel: Telemetry, clock: FakeClock, **options: Any) -> AsyncSendKit:
    return AsyncSendKit(
        api_key=KEY,
        base_url=server.base_url,
        clock=clock.time,
        sleep=clock.sleep,
        hooks=otel.hooks,
        **options,
    )


def attrs_of(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_a_call_is_a_span_with_a_client_span_per_attempt(
    server: Script, otel: Telemetry
) -> None:
    server.default = lambda _: ok()
    port = int(server.base_url.rsplit(":", 1)[1])
    user = otel.tracer_provider.get_tracer("user")
    async with client_for(server, otel, FakeClock()) as client:
        with user.start_as_current_span("report") as outer:
            await client.analytics.campaign(CID)
    [call] = otel.calls()
    [attempt] = otel.attempts()
    assert call.name == attempt.name == ROUTE
    assert call.parent is not None
    assert call.parent.span_id == outer.get_span_context().span_id  # the user's span
    assert attempt.parent is not None
    assert attempt.parent.span_id == call.context.span_id
    assert attempt.context.trace_id == call.context.trace_id
    assert attrs_of(attempt) == {
        "http.request.method": "GET",
        "url.full": f"{server.base_url}/v1/analytics/campaigns/{CID}",
        "url.template": "/v1/analytics/campaigns/{id}",
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.response.status_code": 200,
        "sendkit.request_id": "req-7",
    }
    assert attrs_of(call)["http.response.status_code"] == 200
    assert attrs_of(call)["sendkit.attempts"] == 1
    assert call.status.status_code is StatusCode.UNSET
    assert attempt.status.status_code is StatusCode.UNSET


async def test_retries_are_resends_and_failed_attempts_are_errors(
    server: Script, otel: Telemetry
) -> None:
    server.add(lambda _: fail(503), lambda _: fail(503))
    server.default = lambda _: ok()
    async with client_for(server, otel, FakeClock()) as client:
        await client.analytics.campaign(CID)
    [call] = otel.calls()
    attempts = otel.attempts()
    assert [attrs_of(a).get("http.request.resend_count") for a in attempts] == [None, 1, 2]
    assert [attrs_of(a)["http.response.status_code"] for a in attempts] == [503, 503, 200]
    assert [attrs_of(a).get("error.type") for a in attempts] == ["503", "503", None]
    assert [a.status.status_code for a in attempts] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    assert all(a.parent is not None and a.parent.span_id == call.context.span_id for a in attempts)
    assert call.status.status_code is StatusCode.UNSET  # the call succeeded in the end
    assert attrs_of(call)["sendkit.attempts"] == 3
    assert [e.name for e in call.events] == ["retry", "retry"]


async def test_a_call_that_fails_in_the_end_is_an_error(server: Script, otel: Telemetry) -> None:
    server.default = lambda _: fail(503)
    async with client_for(server, otel, FakeClock(), max_retries=1) as client:
        with pytest.raises(InternalServerError):
            await client.analytics.campaign(CID)
    [call] = otel.calls()
    assert call.status.status_code is StatusCode.ERROR
    assert attrs_of(call)["error.type"] == "503"
    assert attrs_of(call)["http.response.status_code"] == 503
    assert len(otel.attempts()) == 2


async def test_no_answer_names_the_error_class(otel: Telemetry) -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    client = AsyncSendKit(
        api_key=KEY, base_url=f"http://127.0.0.1:{port}", hooks=otel.hooks, max_retries=0
    )
    async with client:
        with pytest.raises(APIConnectionError):
            await client.analytics.campaign(CID)
    [call] = otel.calls()
    [attempt] = otel.attempts()
    assert attrs_of(attempt)["error.type"] == "sendkit_async.errors.APIConnectionError"
    assert "http.response.status_code" not in attrs_of(attempt)
    assert attempt.status.status_code is StatusCode.ERROR
    assert attrs_of(call)["error.type"] == "sendkit_async.errors.APIConnectionError"
    assert call.status.status_code is StatusCode.ERROR


async def test_metrics_count_requests_retries_429s_and_waits(
    server: Script, otel: Telemetry
) -> None:
    server.add(lambda _: fail(429, Retry_After="3"))
    server.default = lambda _: ok()
    clock = FakeClock()
    async with client_for(server, otel, clock, rate_limit=1.0, burst=1.0) as client:
        await client.analytics.campaign("a")  # 429, retried after 3 s
        await client.analytics.campaign("b")
    base = {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": int(server.base_url.rsplit(":", 1)[1]),
        "url.template": "/v1/analytics/campaigns/{id}",
    }
    [requests] = otel.points("sendkit.client.requests")
    assert (dict(requests.attributes), requests.value) == (base, 3)
    [retries] = otel.points("sendkit.client.retries")
    assert (dict(retries.attributes), retries.value) == ({**base, "error.type": "429"}, 1)
    [limited] = otel.points("sendkit.client.rate_limited")
    assert limited.value == 1
    [active] = otel.points("http.client.active_requests")
    assert active.value == 0  # every attempt ended
    assert "url.template" not in active.attributes
    durations = {p.attributes.get("http.response.status_code"): p for p in otel.points(
        "http.client.request.duration"
    )}  # fmt: skip
    assert durations[200].count == 2
    assert durations[429].count == 1
    assert durations[429].attributes["error.type"] == "429"
    waits = {p.attributes["sendkit.throttle.cause"]: p for p in otel.points(
        "sendkit.client.throttle.duration"
    )}  # fmt: skip
    # b waited once for the send rate (lowered by a's 429): every sleep but a's retry wait.
    assert {cause: p.count for cause, p in waits.items()} == {"rate_limit": 1}
    assert waits["rate_limit"].sum == pytest.approx(sum(clock.sleeps) - 3.0)
    assert waits["rate_limit"].sum > 0


async def test_no_span_or_metric_holds_the_key(server: Script, otel: Telemetry) -> None:
    def echo(request: web.Request) -> web.Response:
        seen = request.headers.get("X-Api-Key", "")
        return web.json_response(
            {"error": "x", "message": seen, "code": 503},
            status=503,
            headers={"X-Request-Id": seen},
        )

    def echo_ok(request: web.Request) -> web.Response:
        return web.json_response(OK, headers={"X-Request-Id": request.headers["X-Api-Key"]})

    server.add(echo)
    server.default = echo_ok
    async with client_for(server, otel, FakeClock()) as client:
        await client.analytics.campaign(CID)
    assert server.requests[0].headers["X-Api-Key"] == KEY
    texts = []
    for span in otel.spans():
        texts.append(span.to_json())
    data = otel.reader.get_metrics_data()
    assert data is not None
    texts.append(data.to_json())
    assert len(otel.spans()) == 3
    assert not [t for t in texts if KEY in t]


async def test_without_an_sdk_the_api_alone_records_nothing(server: Script) -> None:
    server.default = lambda _: ok()
    hooks = OpenTelemetryHooks(tracer_provider=trace.NoOpTracerProvider())
    async with AsyncSendKit(api_key=KEY, base_url=server.base_url, hooks=hooks) as client:
        result = await client.analytics.campaign(CID)
    assert result.campaign.name == "Q1 Outreach"
    assert hooks._calls == {}  # nothing kept after the call


async def test_importing_the_package_never_imports_opentelemetry() -> None:
    code = (
        "import sys; import sendkit_async; from sendkit_async import AsyncSendKit;"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    status, out, err = await run_python("-c", code, env={"PYTHONPATH": path})
    assert status == 0, err
    assert out.strip() == "[]"
