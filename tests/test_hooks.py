"""Hooks against loopback servers on a fake clock: events, order, failures, no key."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import attrs
import pytest
from aiohttp import web

from sendkit_async import (
    APIConnectionError,
    AsyncSendKit,
    AuthenticationError,
    Call,
    CallEndEvent,
    ConfigurationError,
    Hooks,
    InternalServerError,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    ThrottleEvent,
)
from tests.helpers import KEY, PLATFORM_KEY, FakeClock, Script, fixture

OK = fixture("analytics_campaign_seed.json")
CID = "64f0c2a1b2c3d4e5f6a7b8c9"


def ok(request_id: str = "req-1") -> web.Response:
    return web.json_response(OK, headers={"X-Request-Id": request_id})


def fail(status: int, **headers: str) -> web.Response:
    body = {"error": "x", "message": "y", "code": status}
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
    return web.json_response(body, status=status, headers=hdrs)


class Recorder(Hooks):
    """Every event, in order, as (kind, event)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_call_start(self, call: Call) -> None:
        self.events.append(("start", call))

    def on_request(self, event: RequestEvent) -> None:
        self.events.append(("request", event))

    def on_response(self, event: ResponseEvent) -> None:
        self.events.append(("response", event))

    def on_retry(self, event: RetryEvent) -> None:
        self.events.append(("retry", event))

    def on_throttle(self, event: ThrottleEvent) -> None:
        self.events.append(("throttle", event))

    def on_call_end(self, event: CallEndEvent) -> None:
        self.events.append(("end", event))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def of(self, kind: str) -> list[Any]:
        return [event for k, event in self.events if k == kind]


def client_for(server: Script, clock: FakeClock, hooks: Any, **options: Any) -> AsyncSendKit:
    options.setdefault("api_key", KEY)
    return AsyncSendKit(
        base_url=server.base_url, clock=clock.time, sleep=clock.sleep, hooks=hooks, **options
    )


async def test_a_successful_call_reports_start_request_response_end(server: Script) -> None:
    server.default = lambda _: ok("req-42")
    hooks, clock = Recorder(), FakeClock()
    async with client_for(server, clock, hooks) as client:
        result = await client.analytics.campaign(CID, from_="2024-01-01")
    assert result.campaign.name == "Q1 Outreach"
    assert hooks.kinds() == ["start", "request", "response", "end"]
    call = hooks.of("start")[0]
    assert call.method == "GET"
    assert call.url == f"{server.base_url}/v1/analytics/campaigns/{CID}?from=2024-01-01"
    assert call.route == "/v1/analytics/campaigns/{id}"
    assert call.host == "127.0.0.1"
    assert call.port == int(server.base_url.rsplit(":", 1)[1])
    assert hooks.of("request") == [RequestEvent(call, 1)]
    assert hooks.of("response") == [ResponseEvent(call, 1, 200, 0.0, "req-42", None)]
    assert hooks.of("end") == [CallEndEvent(call, 1, 0.0, 200, None)]
    assert all(event.call is call for kind, event in hooks.events if kind != "start")


async def test_a_retried_503_reports_each_attempt_and_the_wait(server: Script) -> None:
    server.add(lambda _: fail(503), lambda _: fail(503))
    server.default = lambda _: ok()
    hooks, clock = Recorder(), FakeClock()
    async with client_for(server, clock, hooks) as client:
        await client.analytics.campaign(CID)
    assert hooks.kinds() == [
        "start",
        *("request", "response", "retry") * 2,
        "request",
        "response",
        "end",
    ]
    assert [e.attempt for e in hooks.of("request")] == [1, 2, 3]
    assert [e.status for e in hooks.of("response")] == [503, 503, 200]
    retries = hooks.of("retry")
    assert [r.attempt for r in retries] == [1, 2]
    assert [r.reason for r in retries] == ["503", "503"]
    assert all(isinstance(r.error, InternalServerError) for r in retries)
    assert [r.wait for r in retries] == clock.sleeps  # the waits the client really slept
    end = hooks.of("end")[0]
    assert (end.attempts, end.status, end.error) == (3, 200, None)
    assert end.elapsed == pytest.approx(sum(clock.sleeps))


async def test_a_429_reports_its_retry_and_the_cooldown_it_imposes(server: Script) -> None:
    server.add(lambda _: fail(429, Retry_After="3"))
    server.default = lambda _: ok()
    hooks, clock = Recorder(), FakeClock()
    async with client_for(server, clock, hooks) as client:
        await client.analytics.campaign(CID)  # its retry sleeps out the Retry-After
        first_retry = hooks.of("retry")
        assert [(r.attempt, r.wait, r.reason) for r in first_retry] == [(1, 3.0, "429")]
        # A 429 closes the client's gate: a call made meanwhile waits there.
        release = asyncio.Event()

        async def held_retry_sleep(seconds: float) -> None:
            await release.wait()  # the second call's retry waits until the third is done
            clock.now += seconds

        client._core.sleep = held_retry_sleep  # retry waits only: the limiter keeps the clock
        server.add(lambda _: fail(429, Retry_After="2"))
        hooks.events.clear()
        held = asyncio.ensure_future(client.analytics.campaign("second"))
        while not hooks.of("retry"):
            await asyncio.sleep(0)
        await client.analytics.campaign("third")
        release.set()
        await held
    throttles = hooks.of("throttle")
    third = [(t.cause, t.wait) for t in throttles if t.call.url.endswith("/third")]
    assert third == [("cooldown", 2.0)]  # the gate the second call's 429 closed
    assert all(t.wait > 0 for t in throttles)


async def test_a_rate_limit_wait_is_reported_with_its_cause(server: Script) -> None:
    server.default = lambda _: ok()
    hooks, clock = Recorder(), FakeClock()
    async with client_for(server, clock, hooks, rate_limit=1.0, burst=1.0) as client:
        await client.analytics.campaign("a")
        await client.analytics.campaign("b")
    throttles = hooks.of("throttle")
    assert [t.cause for t in throttles] == ["rate_limit"]
    assert throttles[0].wait == pytest.approx(1.0)
    assert throttles[0].call.url.endswith("/b")
    # Reported before the attempt it held back.
    kinds = hooks.kinds()
    assert kinds[kinds.index("throttle") + 1] == "request"


async def test_a_call_that_fails_reports_the_error_at_its_end(server: Script) -> None:
    server.default = lambda _: fail(401)
    hooks, clock = Recorder(), FakeClock()
    async with client_for(server, clock, hooks) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.analytics.campaign(CID)
    assert hooks.kinds() == ["start", "request", "response", "end"]
    assert hooks.of("response")[0].status == 401
    end = hooks.of("end")[0]
    # The error raised (coalescing gives each caller its own copy of the shared one).
    assert isinstance(end.error, AuthenticationError)
    assert str(end.error) == str(caught.value)
    assert (end.attempts, end.status) == (1, 401)


async def test_no_answer_is_a_response_without_status() -> None:
    hooks, clock = Recorder(), FakeClock()
    # A port nobody listens on: bind one, note it, close it.
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    client = AsyncSendKit(
        api_key=KEY,
        base_url=f"http://127.0.0.1:{port}",
        clock=clock.time,
        sleep=clock.sleep,
        hooks=hooks,
        max_retries=0,
    )
    async with client:
        with pytest.raises(APIConnectionError):
            await client.analytics.campaign(CID)
    response = hooks.of("response")[0]
    assert response.status is None
    assert isinstance(response.error, APIConnectionError)
    assert hooks.of("end")[0].status is None


async def test_a_cancelled_call_still_ends_its_attempt_and_the_call(server: Script) -> None:
    release = asyncio.Event()

    async def held(_: web.Request) -> web.Response:
        await release.wait()
        return ok()

    server.default = held
    hooks, clock = Recorder(), FakeClock()
    async with client_for(server, clock, hooks) as client:
        task = asyncio.ensure_future(client.analytics.campaign(CID))
        while not hooks.of("request"):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
    assert hooks.kinds() == ["start", "request", "response", "end"]
    assert isinstance(hooks.of("response")[0].error, asyncio.CancelledError)
    assert isinstance(hooks.of("end")[0].error, asyncio.CancelledError)


class Broken(Hooks):
    def on_request(self, event: RequestEvent) -> None:
        raise RuntimeError("hook bug")

    def on_call_end(self, event: CallEndEvent) -> None:
        raise ValueError("another hook bug")


async def test_a_raising_hook_is_logged_and_the_call_goes_on(
    server: Script, caplog: pytest.LogCaptureFixture
) -> None:
    server.add(lambda _: fail(503))
    server.default = lambda _: ok()
    after = Recorder()
    caplog.set_level(logging.ERROR, logger="sendkit_async")
    async with client_for(server, FakeClock(), [Broken(), after]) as client:
        result = await client.analytics.campaign(CID)
    assert result.campaign.name == "Q1 Outreach"
    assert after.kinds() == ["start", "request", "response", "retry", "request", "response", "end"]
    failures = [r for r in caplog.records if r.name == "sendkit_async" and r.exc_info]
    assert [type(r.exc_info[1]).__name__ for r in failures if r.exc_info] == [
        "RuntimeError",
        "RuntimeError",
        "ValueError",
    ]
    assert all("Broken.on_" in r.getMessage() for r in failures)


def _texts(value: Any, seen: set[int] | None = None) -> list[str]:
    """repr and str of ``value`` and of everything reachable from its fields and attributes."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    texts = [repr(value), str(value)]
    if attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            texts += _texts(getattr(value, field.name), seen)
    elif isinstance(value, BaseException):
        texts += [str(a) for a in value.args]
        for item in vars(value).values():
            texts += _texts(item, seen)
    elif isinstance(value, dict) or hasattr(value, "items"):
        for k, v in value.items():
            texts += _texts(k, seen) + _texts(v, seen)
    return texts


@pytest.mark.parametrize("key", [KEY, PLATFORM_KEY])
async def test_no_event_holds_the_key(server: Script, key: str) -> None:
    # The server echoes the key back in a body and a header, then fails, then answers.
    def echo(request: web.Request) -> web.Response:
        seen = request.headers.get("X-Api-Key", "")
        return web.json_response(
            {"error": "x", "message": f"bad key {seen}", "code": 503},
            status=503,
            headers={"X-Request-Id": f"id-{seen}", "X-Echo": seen},
        )

    def echo_ok(request: web.Request) -> web.Response:
        return ok(f"id-{request.headers.get('X-Api-Key', '')}")  # a 2xx is not masked by itself

    server.add(echo, lambda _: fail(429, Retry_After="1"), echo_ok)
    server.default = lambda _: fail(401)
    hooks, clock = Recorder(), FakeClock()
    options = {"workspace_id": "ws_1"} if key == PLATFORM_KEY else {}
    async with client_for(server, clock, hooks, api_key=key, **options) as client:
        await client.analytics.campaign(CID)
        with pytest.raises(AuthenticationError):
            await client.analytics.campaign(CID)
    assert server.requests[0].headers["X-Api-Key"] == key  # the key was really sent
    assert [e.request_id for e in hooks.of("response")] == ["id-sk_***", None, "id-sk_***", None]
    texts = [text for _, event in hooks.events for text in _texts(event)]
    assert texts
    assert not [t for t in texts if key in t]


async def test_bulk_runs_report_every_call(server: Script) -> None:
    server.default = lambda _: ok()
    hooks = Recorder()
    async with client_for(server, FakeClock(), hooks) as client:
        await client.gather_campaigns(["a", "b", "c", "a"])
    starts = hooks.of("start")
    assert sorted(c.url.rsplit("/", 1)[1] for c in starts) == ["a", "b", "c"]
    assert {e.call for e in hooks.of("end")} == set(starts)


def test_no_hooks_and_empty_hooks_leave_the_pipeline_alone() -> None:
    assert AsyncSendKit(api_key=KEY)._core.hooks is None
    assert AsyncSendKit(api_key=KEY, hooks=Hooks())._core.hooks is None
    assert AsyncSendKit(api_key=KEY, hooks=[Hooks(), Recorder()])._core.hooks is not None


def test_async_hooks_and_strangers_are_refused() -> None:
    class Async(Hooks):
        async def on_request(self, event: RequestEvent) -> None:  # type: ignore[override]
            pass

    with pytest.raises(ConfigurationError, match="not async"):
        AsyncSendKit(api_key=KEY, hooks=Async())
    with pytest.raises(ConfigurationError, match="none of the hook methods"):
        AsyncSendKit(api_key=KEY, hooks=object())  # type: ignore[arg-type]


def test_a_plain_object_with_hook_methods_is_accepted() -> None:
    class Duck:
        def __init__(self) -> None:
            self.seen: list[RequestEvent] = []

        def on_request(self, event: RequestEvent) -> None:
            self.seen.append(event)

    client = AsyncSendKit(api_key=KEY, hooks=Duck())  # type: ignore[arg-type]
    assert client._core.hooks is not None
    assert len(client._core.hooks.on_request) == 1


async def test_a_wait_for_the_open_fault_circuit_is_an_overload_throttle(server: Script) -> None:
    server.add(*(lambda _: fail(503) for _ in range(5)))
    server.default = lambda _: ok()
    hooks, clock = Recorder(), FakeClock()
    async with client_for(server, clock, hooks, max_retries=0) as client:
        for _ in range(5):  # five faults in a row open the circuit
            with pytest.raises(InternalServerError):
                await client.analytics.campaign(CID)
        assert client._core.guard.open
        assert not hooks.of("throttle")
        hooks.events.clear()
        result = await client.analytics.campaign(CID)  # waits for the circuit's probe
    assert result.campaign.name == "Q1 Outreach"
    assert hooks.kinds() == ["start", "throttle", "request", "response", "end"]
    [throttle] = hooks.of("throttle")
    assert throttle.cause == "overload"
    assert throttle.wait > 0
    assert throttle.wait == pytest.approx(sum(clock.sleeps))  # the only wait of the test


def test_the_blocking_client_calls_hooks_on_its_own_thread() -> None:
    import threading

    from sendkit_async import SendKit
    from sendkit_async.simulator import SimulatorConfig, run_simulator
    from tests.sync_helpers import served

    class Threads(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.threads: set[int] = set()

        def on_request(self, event: RequestEvent) -> None:
            self.threads.add(threading.get_ident())
            super().on_request(event)

    hooks = Threads()
    with (
        served(lambda: run_simulator(SimulatorConfig(campaigns=5, seed=3))) as (sim, _),
        SendKit(api_key=KEY, base_url=sim.base_url, hooks=hooks) as client,
    ):
        campaign_id = sim.campaign_ids[0]
        result = client.analytics.campaign(campaign_id)
    assert result.campaign.id == campaign_id
    # (a throttle event too, if the simulator's limit held the request back)
    assert [k for k in hooks.kinds() if k != "throttle"] == ["start", "request", "response", "end"]
    assert hooks.of("response")[0].status == 200
    assert hooks.threads and threading.get_ident() not in hooks.threads
