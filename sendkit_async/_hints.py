"""Rate-limit hints: what a response's headers say about the server's limit.

Pure functions of headers, in the protocol layer (no ``await``, no aiohttp):
``rate_limit_hints`` reads every common rate-limit convention into a
``RateLimitHints`` (``NO_HINTS`` when there is none), ``parse_retry_after``
reads ``Retry-After`` / ``retry-after-ms``. ``_get`` is the case-insensitive
header lookup that ``_protocol`` shares. Everything here is re-exported from
``_protocol``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import attrs

__all__ = [
    "MAX_COUNT",
    "MAX_SECONDS",
    "MIN_SECONDS",
    "NO_HINTS",
    "RateLimitHints",
    "parse_retry_after",
    "rate_limit_hints",
]

# Epoch values are far larger than any sane "seconds from now" (about 31 years).
_EPOCH_SECONDS_MIN = 1e9
_EPOCH_MILLIS_MIN = 1e12

# Headers are the server's (or a proxy's) text: a number beyond a float's range
# is ignored like any garbage, every other one is clamped, so nothing downstream
# meets inf, NaN, a huge int or a zero divisor.
MAX_COUNT = 10**9
"""A limit or remaining count above this is read as this (no API grants more per window)."""
MAX_SECONDS = 86_400.0
"""A reset, window or wait above one day is read as one day."""
MIN_SECONDS = 0.001
"""A reset or wait below a millisecond is read as 0; a window that short is ignored."""


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)  # case-insensitive mappings, and exact spellings, answer here
    if value is not None:
        return value
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


@attrs.frozen
class RateLimitHints:
    """What a response said about the rate limit, in plain numbers (seconds from now)."""

    limit: int | None = None
    """0..``MAX_COUNT``."""
    remaining: int | None = None
    """0..``MAX_COUNT``."""
    reset_after: float | None = None
    """0 or ``MIN_SECONDS``..``MAX_SECONDS``."""
    window: float | None = None
    """``MIN_SECONDS``..``MAX_SECONDS``: never 0, so always a safe divisor."""
    retry_after: float | None = None
    """0 or ``MIN_SECONDS``..``MAX_SECONDS``."""


def _number(value: str | None) -> float | None:
    """A finite, non-negative number, or None (garbage, NaN, or beyond a float's range)."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


def _seconds(number: float | None) -> float | None:
    """``number`` clamped into 0 or ``MIN_SECONDS``..``MAX_SECONDS``."""
    if number is None or not math.isfinite(number):
        return None
    if number < MIN_SECONDS:
        return 0.0
    return min(number, MAX_SECONDS)


def _count(number: float | None) -> int | None:
    """``number`` as an int clamped into 0..``MAX_COUNT``."""
    if number is None or not math.isfinite(number):
        return None
    return int(min(max(number, 0.0), MAX_COUNT))


def _window(number: float | None) -> float | None:
    """A window length, or None when it is too short to divide by."""
    seconds = _seconds(number)
    return seconds if seconds else None


_NUM = r"(\d+(?:\.\d+)?)"
_DURATION = re.compile(rf"(?:{_NUM}h)?(?:{_NUM}m(?!s))?(?:{_NUM}s)?(?:{_NUM}ms)?$")


def _duration(value: str | None) -> float | None:
    """Seconds from ``"12"``, ``"1.5"`` or Go-style ``"6m0s"`` / ``"250ms"``; None if garbage."""
    number = _number(value)
    if number is not None or value is None:
        return number
    match = _DURATION.match(value.strip())
    if not match or not any(match.groups()):
        return None
    h, m, s, ms = (float(g) if g else 0.0 for g in match.groups())
    total = h * 3600 + m * 60 + s + ms / 1000
    return total if math.isfinite(total) else None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (delta or HTTP-date).

    ``now`` is the current epoch time (for HTTP-dates). Garbage or negative
    values give None, never an exception; the rest is clamped to at most
    ``MAX_SECONDS`` (a wait under ``MIN_SECONDS`` is 0).
    """
    millis = _number(_get(headers, "retry-after-ms"))
    if millis is not None:
        return _seconds(millis / 1000)
    raw = _get(headers, "Retry-After")
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return _seconds(seconds)
    try:
        when = parsedate_to_datetime(raw)
        if when is None or when.tzinfo is None:
            return None
        epoch = when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    current = time.time() if now is None else now
    return _seconds(max(0.0, epoch - current))


def _reset_seconds(value: str | None, now: float | None) -> float | None:
    """A reset given as epoch seconds/millis or seconds from now, as seconds from now."""
    number = _duration(value)
    if number is None:
        return None
    if number >= _EPOCH_SECONDS_MIN:
        current = time.time() if now is None else now
        epoch = number / 1000 if number >= _EPOCH_MILLIS_MIN else number
        return _seconds(max(0.0, epoch - current))
    return _seconds(number)


def _int(value: str | None) -> int | None:
    return _count(_number(value))


_HINT_PREFIXES = ("x-ratelimit", "ratelimit", "retry-after")
_HINT_INITIALS = frozenset("xXrR")
_POLICY_WINDOW = re.compile(r"\bw=(\d+(?:\.\d+)?)")
_SF_PARAM = re.compile(r"\b([rt])=(\d+(?:\.\d+)?)")


NO_HINTS = RateLimitHints()
"""What :func:`rate_limit_hints` returns for a response without any hint."""


def rate_limit_hints(
    headers: Mapping[str, str], *, status: int = 200, now: float | None = None
) -> RateLimitHints:
    """Read every common rate-limit convention from ``headers``.

    Understood: ``X-RateLimit-Limit/Remaining/Reset`` (reset as epoch seconds,
    epoch millis or seconds from now, told apart by size), the same with a
    ``-Requests`` suffix (reset as ``"1s"``/``"6m0s"``), IETF
    ``RateLimit-Limit/Remaining/Reset`` with ``RateLimit-Policy`` (``w=``),
    the structured ``RateLimit: r=..;t=..`` header, ``Retry-After`` (delta or
    HTTP-date) and ``retry-after-ms``. On a 429 with no Retry-After, a reset
    time stands in for it. Malformed values are ignored.
    """
    # This runs for every response and most carry no hint: a cheap look at
    # first letters settles that; then one pass keeps the ones that matter.
    for key in headers:
        if key[:1] in _HINT_INITIALS and key.lower().startswith(_HINT_PREFIXES):
            break
    else:
        return NO_HINTS
    headers = {
        low: value
        for key, value in headers.items()
        if (low := key.lower()).startswith(_HINT_PREFIXES)
    }
    if not headers:
        return NO_HINTS
    limit = remaining = None
    reset_after = None
    for prefix in ("x-ratelimit-", "ratelimit-"):
        for suffix in ("", "-requests"):
            limit = limit if limit is not None else _int(_get(headers, f"{prefix}limit{suffix}"))
            if remaining is None:
                remaining = _int(_get(headers, f"{prefix}remaining{suffix}"))
            if reset_after is None:
                reset_after = _reset_seconds(_get(headers, f"{prefix}reset{suffix}"), now)
    structured = _get(headers, "RateLimit")
    if structured:
        params = dict(_SF_PARAM.findall(structured))
        if remaining is None and "r" in params:
            remaining = _count(_number(params["r"]))
        if reset_after is None and "t" in params:
            reset_after = _seconds(_number(params["t"]))
    window = None
    policy = _get(headers, "RateLimit-Policy")
    if policy:
        match = _POLICY_WINDOW.search(policy)
        window = _window(_number(match.group(1))) if match else None
    retry_after = parse_retry_after(headers, now=now)
    if retry_after is None and status == 429 and reset_after is not None:
        retry_after = reset_after
    return RateLimitHints(limit, remaining, reset_after, window, retry_after)
