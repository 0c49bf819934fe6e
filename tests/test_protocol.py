"""The pure protocol layer, tested with plain (status, headers, body) samples."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendkit_async import errors
from sendkit_async._protocol import (
    RateLimitHints,
    auth_headers,
    decode_json,
    error_from_response,
    iso_date,
    parse_envelope,
    parse_retry_after,
    path_segment,
    rate_limit_hints,
    redact_headers,
    request_id,
)
from tests.helpers import KEY, PLATFORM_KEY, fixture

NOW = 1_800_000_000.0  # a fixed epoch "now" for HTTP-dates and epoch resets


# ----------------------------------------------------------------- requests


def test_auth_headers_workspace_key_never_sends_workspace() -> None:
    h = auth_headers(KEY, "ws_1", "ua/1")
    assert h["X-Api-Key"] == KEY
    assert h["Authorization"] == f"Bearer {KEY}"
    assert h["User-Agent"] == "ua/1"
    assert "X-Workspace-Id" not in h


def test_auth_headers_platform_key_sends_workspace() -> None:
    assert auth_headers(PLATFORM_KEY, "ws_1", "ua")["X-Workspace-Id"] == "ws_1"
    assert "X-Workspace-Id" not in auth_headers(PLATFORM_KEY, None, "ua")


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("664a1b2c3d4e5f6a7b8c9d02", "664a1b2c3d4e5f6a7b8c9d02"),
        ("a/b", "a%2Fb"),
        ("../x", "..%2Fx"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("x?y=1", "x%3Fy%3D1"),
        ("a#b", "a%23b"),
        ("%2e%2e", "%252e%252e"),
        ("über id", "%C3%BCber%20id"),
    ],
)
def test_path_segment_encodes_one_segment(raw: str, encoded: str) -> None:
    assert path_segment(raw) == encoded
    assert "/" not in path_segment(raw)


@pytest.mark.parametrize("bad", ["", "   ", "\t\n", None, 42, "x\udc80"])
def test_path_segment_rejects_empty_and_non_strings(bad: object) -> None:
    with pytest.raises(errors.InvalidRequestError) as info:
        path_segment(bad, "campaign_id")
    assert "campaign_id" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_iso_date_forms() -> None:
    assert iso_date(dt.date(2024, 5, 28)) == "2024-05-28"
    assert iso_date(dt.datetime(2024, 5, 28, 12, 0, tzinfo=dt.timezone.utc)) == (
        "2024-05-28T12:00:00+00:00"
    )
    assert iso_date("2024-05-28") == "2024-05-28"
    assert iso_date("2024-05-28T10:00:00Z") == "2024-05-28T10:00:00Z"
    assert iso_date(None) is None
    with pytest.raises(errors.InvalidRequestError, match="from_"):
        iso_date("yesterday", "from_")
    with pytest.raises(errors.InvalidRequestError):
        iso_date(20240528, "to")  # type: ignore[arg-type]


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (422, errors.UnprocessableEntityError),
        (429, errors.RateLimitError),
        (500, errors.InternalServerError),
        (502, errors.InternalServerError),
        (503, errors.InternalServerError),
        (504, errors.InternalServerError),
        (418, errors.APIStatusError),
    ],
)
def test_status_maps_to_class(status: int, cls: type[errors.APIStatusError]) -> None:
    exc = error_from_response(status, {}, b"")
    assert type(exc) is cls
    assert exc.status == status


def test_documented_404_envelope_fills_fields() -> None:
    body = json.dumps(fixture("error_404.json")).encode()
    exc = error_from_response(
        404, {"X-Request-Id": "req_123"}, body, method="GET", url="https://h/v1/x"
    )
    assert isinstance(exc, errors.NotFoundError)
    assert exc.error == "Not Found"
    assert exc.message == "The requested resource was not found"
    assert exc.code == 404
    assert exc.request_id == "req_123"
    assert str(exc) == (
        "HTTP 404 for GET https://h/v1/x: The requested resource was not found [request id req_123]"
    )


def test_documented_403_envelope() -> None:
    exc = error_from_response(403, {}, json.dumps(fixture("error_403.json")).encode())
    assert isinstance(exc, errors.PermissionDeniedError)
    assert exc.message == "You don't have permission to access this resource"
    assert exc.error == "Forbidden"


def test_html_502_keeps_class_and_status() -> None:
    body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    exc = error_from_response(502, {"Content-Type": "text/html"}, body)
    assert isinstance(exc, errors.InternalServerError)
    assert exc.status == 502
    assert exc.error is None and exc.code is None
    assert exc.message == "non-JSON body (text/html): 502 Bad Gateway"
    assert exc.body == body.decode()


def test_empty_error_body() -> None:
    exc = error_from_response(503, {}, b"")
    assert exc.message == "empty response body"


def test_error_body_is_truncated() -> None:
    exc = error_from_response(500, {}, b"x" * 10_000)
    assert len(exc.body) == errors.BODY_LIMIT


def test_redirect_names_location() -> None:
    exc = error_from_response(302, {"Location": "https://evil.example/steal"}, b"")
    assert isinstance(exc, errors.RedirectError)
    assert exc.location == "https://evil.example/steal"
    assert "https://evil.example/steal" in str(exc)


def test_429_carries_retry_after() -> None:
    exc = error_from_response(429, {"Retry-After": "7"}, b"")
    assert isinstance(exc, errors.RateLimitError)
    assert exc.retry_after == 7.0
    assert error_from_response(429, {}, b"").retry_after is None  # type: ignore[attr-defined]


def test_error_headers_are_redacted_and_read_only() -> None:
    exc = error_from_response(500, {"Set-Cookie": "s=1", "X-Api-Key": KEY, "A": "b"}, b"")
    assert exc.headers == {"Set-Cookie": "<redacted>", "X-Api-Key": "<redacted>", "A": "b"}
    with pytest.raises(TypeError):
        exc.headers["A"] = "c"  # type: ignore[index]
    assert redact_headers({"authorization": "Bearer x"}) == {"authorization": "<redacted>"}


def test_request_id_header_variants() -> None:
    assert request_id({"request-id": "a"}) == "a"
    assert request_id({"X-Amzn-RequestId": "b"}) == "b"
    assert request_id({}) is None


# ----------------------------------------------------------------- envelopes


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"<html>oops</html>", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "no 'data'"),
        (b'{"success": true}', "no 'data'"),
        (b'{"success": false, "data": {}}', "success: false"),
    ],
)
def test_bad_success_bodies(body: bytes, fragment: str) -> None:
    with pytest.raises(errors.ResponseValidationError, match=fragment):
        parse_envelope(200, body)


# ----------------------------------------------------------------- rate-limit hints


def test_retry_after_delta_seconds() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5


def test_retry_after_http_date() -> None:
    when = dt.datetime.fromtimestamp(NOW + 30, tz=dt.timezone.utc)
    assert parse_retry_after({"Retry-After": format_datetime(when, usegmt=True)}, now=NOW) == 30.0


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    when = dt.datetime.fromtimestamp(NOW - 30, tz=dt.timezone.utc)
    assert parse_retry_after({"Retry-After": format_datetime(when, usegmt=True)}, now=NOW) == 0.0


def test_retry_after_ms_wins() -> None:
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "1"}) == 0.25


@pytest.mark.parametrize("garbage", ["-5", "soon", "", "NaN", "inf", "Mon, 99 Foo 2024"])
def test_retry_after_garbage_is_none(garbage: str) -> None:
    assert parse_retry_after({"Retry-After": garbage}, now=NOW) is None


def test_x_ratelimit_reset_delta_vs_epoch() -> None:
    delta = rate_limit_hints(
        {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "12"},
        now=NOW,
    )
    assert delta == RateLimitHints(limit=100, remaining=7, reset_after=12.0)
    epoch = rate_limit_hints({"X-RateLimit-Reset": str(int(NOW + 20))}, now=NOW)
    assert epoch.reset_after == 20.0
    millis = rate_limit_hints({"X-RateLimit-Reset": str(int((NOW + 5) * 1000))}, now=NOW)
    assert millis.reset_after == pytest.approx(5.0)


def test_ietf_headers_and_policy_window() -> None:
    hints = rate_limit_hints(
        {
            "RateLimit-Limit": "50",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": "4",
            "RateLimit-Policy": "50;w=10",
        }
    )
    assert hints == RateLimitHints(limit=50, remaining=0, reset_after=4.0, window=10.0)


def test_structured_ratelimit_header() -> None:
    hints = rate_limit_hints(
        {"RateLimit": '"default";r=3;t=9', "RateLimit-Policy": '"default";q=100;w=60'}
    )
    assert (hints.remaining, hints.reset_after, hints.window) == (3, 9.0, 60.0)


def test_openai_style_request_headers() -> None:
    hints = rate_limit_hints(
        {
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "59",
            "x-ratelimit-reset-requests": "1m30s",
        }
    )
    assert (hints.limit, hints.remaining, hints.reset_after) == (60, 59, 90.0)
    assert rate_limit_hints({"x-ratelimit-reset-requests": "250ms"}).reset_after == 0.25


def test_429_without_retry_after_uses_reset() -> None:
    hints = rate_limit_hints({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2"}, status=429)
    assert hints.retry_after == 2.0
    assert rate_limit_hints({"X-RateLimit-Reset": "2"}, status=200).retry_after is None


def test_no_headers_no_hints() -> None:
    assert rate_limit_hints({}, status=429) == RateLimitHints()


@pytest.mark.parametrize("bad", ["-1", "abc", "1e999", ""])
def test_malformed_limit_headers_are_ignored(bad: str) -> None:
    hints = rate_limit_hints(
        {"X-RateLimit-Limit": bad, "X-RateLimit-Remaining": bad, "X-RateLimit-Reset": bad},
        status=429,
    )
    assert hints == RateLimitHints()


@given(st.text(min_size=1).filter(lambda s: s.strip()))
def test_any_id_is_exactly_one_segment(campaign_id: str) -> None:
    from urllib.parse import unquote

    from yarl import URL

    encoded = path_segment(campaign_id)
    url = URL(f"https://api.sendkit.ai/v1/analytics/campaigns/{encoded}", encoded=True)
    assert url.raw_parts[:4] == ("/", "v1", "analytics", "campaigns")
    assert len(url.raw_parts) == 5
    assert unquote(url.raw_parts[4]) == campaign_id
    assert "?" not in url.raw_path and "#" not in url.raw_path


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def _loads_outcome(fn: Callable[[bytes], object], body: bytes) -> object:
    try:
        return ("ok", fn(body))
    except ValueError as exc:
        return ("error", type(exc).__name__)


@given(
    value=_JSONISH,
    before=st.sampled_from(["", " ", "\n", "\ufeff", "\x0c"]),
    after=st.sampled_from(["", " \r\n", "x", "\x0b", "}", ",1"]),
    encoding=st.sampled_from(["utf-8", "utf-16", "utf-8-sig"]),
)
def test_decode_json_is_json_loads(value: object, before: str, after: str, encoding: str) -> None:
    body = (before + json.dumps(value, ensure_ascii=False) + after).encode(encoding)
    assert _loads_outcome(decode_json, body) == _loads_outcome(json.loads, body)


@given(st.binary(max_size=40))
def test_decode_json_on_any_bytes(body: bytes) -> None:
    assert _loads_outcome(decode_json, body) == _loads_outcome(json.loads, body)
