"""Rate-limit headers are the server's text: whatever they say, the hints stay sane numbers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendkit_async._hints import (
    MAX_COUNT,
    MAX_SECONDS,
    MIN_SECONDS,
    RateLimitHints,
    parse_retry_after,
    rate_limit_hints,
)

NOW = 1_750_000_000.0
DIGITS = "9" * 400  # beyond a float's range: ignored like garbage
BIG = "9" * 300  # a float, far beyond any sane value: clamped

HINT_HEADERS = [
    "RateLimit",
    "RateLimit-Policy",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Limit-Requests",
    "X-RateLimit-Remaining-Requests",
    "X-RateLimit-Reset-Requests",
    "Retry-After",
    "retry-after-ms",
]


def assert_sane(hints: RateLimitHints) -> None:
    for count in (hints.limit, hints.remaining):
        assert count is None or (type(count) is int and 0 <= count <= MAX_COUNT)
    for seconds in (hints.reset_after, hints.retry_after):
        assert seconds is None or seconds == 0.0 or MIN_SECONDS <= seconds <= MAX_SECONDS
        assert seconds is None or math.isfinite(seconds)
    window = hints.window
    assert window is None or (math.isfinite(window) and MIN_SECONDS <= window <= MAX_SECONDS)


@pytest.mark.parametrize(
    "headers",
    [
        {"RateLimit": f"r={DIGITS}"},
        {"RateLimit": f"r=5, t={DIGITS}"},
        {"RateLimit-Limit": "10", "RateLimit-Policy": f"10;w={DIGITS}"},
        {"RateLimit-Limit": "10", "RateLimit-Policy": "10;w=0"},
        {"RateLimit-Limit": "10", "RateLimit-Reset": "1e-320"},
        {"X-RateLimit-Limit": "1e300", "X-RateLimit-Remaining": "1e300"},
        {"X-RateLimit-Reset": DIGITS},
        {"X-RateLimit-Reset": DIGITS + "s"},
        {"X-RateLimit-Reset-Requests": DIGITS + "h"},
        {"Retry-After": DIGITS},
        {"Retry-After": "1e300"},
        {"RateLimit": f"r={BIG}, t={BIG}"},
        {"retry-after-ms": DIGITS},
        {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
    ],
    ids=lambda headers: ",".join(f"{k}={v[:12]}" for k, v in headers.items()),
)
@pytest.mark.parametrize("status", [200, 429])
def test_huge_or_zero_header_numbers_are_clamped(headers: dict[str, str], status: int) -> None:
    assert_sane(rate_limit_hints(headers, status=status, now=NOW))


def test_clamps_are_the_documented_bounds() -> None:
    hints = rate_limit_hints(
        {"RateLimit": f"r={BIG}, t={BIG}", "RateLimit-Policy": f"1;w={BIG}"},
        status=429,
        now=NOW,
    )
    assert hints.remaining == MAX_COUNT
    assert hints.reset_after == hints.retry_after == hints.window == MAX_SECONDS
    assert rate_limit_hints({"X-RateLimit-Limit": BIG}).limit == MAX_COUNT
    assert rate_limit_hints({"X-RateLimit-Reset-Requests": BIG + "h"}).reset_after == MAX_SECONDS
    assert rate_limit_hints({"X-RateLimit-Reset-Requests": DIGITS + "h"}).reset_after is None
    assert rate_limit_hints({"RateLimit": f"r={DIGITS}"}).remaining is None
    assert rate_limit_hints({"RateLimit-Policy": "1;w=0", "RateLimit-Limit": "1"}).window is None
    assert parse_retry_after({"retry-after-ms": BIG}) == MAX_SECONDS
    assert parse_retry_after({"Retry-After": "0.0001"}) == 0.0


_TEXT = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="0123456789.,;=rtwhms -eE+", max_size=60),
    st.from_regex(r"\A[rtw]=[0-9]{1,500}(\.[0-9]{0,20})?\Z"),
    st.integers(min_value=-(10**500), max_value=10**500).map(str),
    st.floats().map(repr),
)


@given(
    headers=st.dictionaries(st.sampled_from(HINT_HEADERS) | st.text(max_size=20), _TEXT),
    status=st.sampled_from([200, 429, 503]),
    now=st.one_of(st.none(), st.floats(0, 4e9)),
)
def test_any_header_text_gives_sane_hints(
    headers: dict[str, str], status: int, now: float | None
) -> None:
    assert_sane(rate_limit_hints(headers, status=status, now=now))
    wait = parse_retry_after(headers, now=now)
    assert wait is None or (math.isfinite(wait) and 0.0 <= wait <= MAX_SECONDS)
