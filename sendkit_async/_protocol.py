"""Pure protocol logic: headers, paths, envelopes, errors and rate-limit hints.

Nothing here awaits or touches aiohttp (as gidgethub's ``sansio``): every
function takes plain values (status, headers, body) so it is tested with
recorded samples and plain synchronous tests.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, TypeAlias, TypeVar
from urllib.parse import quote

import attrs
import cattrs

from . import errors
from ._converter import structure, validation_problems

T = TypeVar("T")

REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "x-correlation-id")
_SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "set-cookie", "cookie", "proxy-authorization"}
)

STATUS_ERRORS: dict[int, type[errors.APIStatusError]] = {
    400: errors.BadRequestError,
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    422: errors.UnprocessableEntityError,
    429: errors.RateLimitError,
}

# Epoch values are far larger than any sane "seconds from now" (about 31 years).
_EPOCH_SECONDS_MIN = 1e9
_EPOCH_MILLIS_MIN = 1e12


# --------------------------------------------------------------------------- requests


def auth_headers(api_key: str, workspace_id: str | None, user_agent: str) -> dict[str, str]:
    """The headers every request carries.

    The key goes both as ``X-Api-Key`` and as a bearer token (the reference
    shows both); ``X-Workspace-Id`` goes only with platform keys.
    """
    headers = {
        "X-Api-Key": api_key,
        "Authorization": f"Bearer {api_key}",
        "User-Agent": user_agent,
        "Accept": "application/json",
    }
    if workspace_id and is_platform_key(api_key):
        headers["X-Workspace-Id"] = workspace_id
    return headers


def is_platform_key(api_key: str) -> bool:
    """Platform keys (``sk_user_...``) need a workspace id for workspace endpoints."""
    return api_key.startswith("sk_user_")


_UNRESERVED = re.compile(r"[A-Za-z0-9_~-]+")


def path_segment(value: object, what: str = "id") -> str:
    """Validate ``value`` and percent-encode it as exactly one path segment.

    ``a/b``, ``../x`` and ``x?y=1`` stay inside their segment: every reserved
    character, ``/`` and ``.`` runs included, is escaped.

    Raises:
        InvalidRequestError: not a string, empty, or only whitespace.
    """
    if not isinstance(value, str):
        raise errors.InvalidRequestError(f"{what} must be a string, got {type(value).__name__}")
    if _UNRESERVED.fullmatch(value):
        return value  # the usual 24-hex id: nothing to escape
    if not value.strip():
        raise errors.InvalidRequestError(f"{what} must not be empty or whitespace: {value!r}")
    try:
        quoted = quote(value, safe="")
    except UnicodeEncodeError:
        raise errors.InvalidRequestError(f"{what} is not valid text: {value!r}") from None
    # "." and ".." are kept by quote() but would be resolved as dot-segments.
    if quoted in (".", ".."):
        quoted = quoted.replace(".", "%2E")
    return quoted


DateLike: TypeAlias = "dt.date | dt.datetime | str"
"""What date parameters accept: a ``date``, a ``datetime`` or an ISO 8601 string."""


def iso_date(value: DateLike | None, what: str = "date") -> str | None:
    """``value`` as the ISO 8601 text the API takes (None stays None).

    Raises:
        InvalidRequestError: not a date, datetime or ISO 8601 string.
    """
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                dt.date.fromisoformat(text)
            else:
                dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise errors.InvalidRequestError(
                f"{what} must be an ISO 8601 date or date-time, got {value!r}"
            ) from None
        return text
    raise errors.InvalidRequestError(
        f"{what} must be a date, datetime or ISO 8601 string, got {type(value).__name__}"
    )


# --------------------------------------------------------------------------- responses


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A plain copy of ``headers`` with credentials replaced by ``<redacted>``."""
    return {k: ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)  # case-insensitive mappings, and exact spellings, answer here
    if value is not None:
        return value
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def request_id(headers: Mapping[str, str]) -> str | None:
    """The server's request id, from the first of the usual header names present."""
    for name in REQUEST_ID_HEADERS:
        value = _get(headers, name)
        if value:
            return value
    return None


def decode_json(body: bytes) -> Any:
    """Decode a JSON body; raises ValueError when it is not JSON.

    Exactly ``json.loads(body)``, a little faster for the usual case (UTF-8, no
    surrounding whitespace): anything else is left to ``json.loads`` itself.
    """
    try:
        text = body.decode("utf-8")
        value, end = _JSON.raw_decode(text)
    except ValueError:
        return json.loads(body)  # decides, and explains what is wrong
    if end != len(text) and text[end:].strip(" \t\n\r"):
        return json.loads(body)  # raises: extra data after the value
    return value


_JSON = json.JSONDecoder()


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    method: str = "",
    url: str = "",
    now: float | None = None,
) -> errors.APIStatusError:
    """Build the right :class:`APIStatusError` subclass for a non-2xx answer.

    A JSON envelope ``{"error", "message", "code"}`` fills the fields; any
    other body (a proxy's HTML page, nothing at all) still gives the class of
    the status, with a short description as message.
    """
    text = body.decode("utf-8", errors="replace")
    error = message = None
    code = None
    try:
        payload = decode_json(body) if body else None
    except ValueError:
        payload = None
    if isinstance(payload, Mapping):
        error = payload.get("error") if isinstance(payload.get("error"), str) else None
        message = payload.get("message") if isinstance(payload.get("message"), str) else None
        raw_code = payload.get("code")
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    if message is None:
        message = error or _describe_body(headers, text)
    kwargs: dict[str, Any] = {
        "status": status,
        "error": error,
        "code": code,
        "request_id": request_id(headers),
        "headers": redact_headers(headers),
        "body": text,
        "method": method,
        "url": url,
    }
    if 300 <= status < 400:
        location = _get(headers, "Location")
        note = f"redirect to {location} not followed" if location else "redirect not followed"
        return errors.RedirectError(f"{message} ({note})", **kwargs)
    if status == 429:
        hints = rate_limit_hints(headers, status=status, now=now)
        return errors.RateLimitError(message, retry_after=hints.retry_after, **kwargs)
    cls = STATUS_ERRORS.get(status)
    if cls is None:
        cls = errors.InternalServerError if status >= 500 else errors.APIStatusError
    return cls(message, **kwargs)


def _describe_body(headers: Mapping[str, str], text: str) -> str:
    if not text.strip():
        return "empty response body"
    kind = (_get(headers, "Content-Type") or "unknown type").split(";")[0]
    snippet = re.sub(r"<[^>]+>", " ", text)
    snippet = " ".join(snippet.split())[:120]
    return f"non-JSON body ({kind}): {snippet}" if snippet else f"non-JSON body ({kind})"


def parse_envelope(status: int, body: bytes) -> Mapping[str, Any]:
    """Check a success body is the ``{"success": true, "data": ...}`` envelope and return it.

    Raises:
        ResponseValidationError: not JSON, not an object, or without ``data``.
    """
    try:
        payload = decode_json(body)
    except ValueError:
        raise errors.ResponseValidationError(
            "response body is not JSON", errors=("$: not JSON",), status=status, body=_text(body)
        ) from None
    if type(payload) is not dict or "data" not in payload:
        raise errors.ResponseValidationError(
            "response body has no 'data' field",
            errors=("$.data: missing",),
            status=status,
            body=_text(body),
        )
    if payload.get("success") is False:
        raise errors.ResponseValidationError(
            "response says success: false",
            errors=("$.success: false",),
            status=status,
            body=_text(body),
        )
    return payload


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def structure_field(
    payload: Mapping[str, Any], key: str, cls: Any, *, status: int = 200, strict: bool = False
) -> Any:
    """Structure ``payload[key]`` into ``cls``, turning cattrs errors into ours.

    Raises:
        ResponseValidationError: listing each bad field by its path (``$.data.stats.sent``).
    """
    try:
        return structure(payload.get(key), cls, strict=strict)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            problems = tuple(validation_problems(exc, f"$.{key}"))
        else:
            problems = (f"$.{key}: {exc}",)
        raise errors.ResponseValidationError(
            "response does not match the documented shape: " + "; ".join(problems[:5]),
            errors=problems,
            status=status,
            body=json.dumps(payload)[:2000],
        ) from None


# --------------------------------------------------------------------------- rate limits


@attrs.frozen
class RateLimitHints:
    """What a response said about the rate limit, in plain numbers (seconds from now)."""

    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None
    window: float | None = None
    retry_after: float | None = None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if math.isnan(number) or math.isinf(number) or number < 0:
        return None
    return number


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
    return h * 3600 + m * 60 + s + ms / 1000


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (delta or HTTP-date).

    ``now`` is the current epoch time (for HTTP-dates). Garbage or negative
    values give None, never an exception.
    """
    millis = _number(_get(headers, "retry-after-ms"))
    if millis is not None:
        return millis / 1000
    raw = _get(headers, "Retry-After")
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _reset_seconds(value: str | None, now: float | None) -> float | None:
    """A reset given as epoch seconds/millis or seconds from now, as seconds from now."""
    number = _duration(value)
    if number is None:
        return None
    if number >= _EPOCH_SECONDS_MIN:
        current = time.time() if now is None else now
        epoch = number / 1000 if number >= _EPOCH_MILLIS_MIN else number
        return max(0.0, epoch - current)
    return number


def _int(value: str | None) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


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
            remaining = int(float(params["r"]))
        if reset_after is None and "t" in params:
            reset_after = float(params["t"])
    window = None
    policy = _get(headers, "RateLimit-Policy")
    if policy:
        match = _POLICY_WINDOW.search(policy)
        window = float(match.group(1)) if match else None
    retry_after = parse_retry_after(headers, now=now)
    if retry_after is None and status == 429 and reset_after is not None:
        retry_after = reset_after
    return RateLimitHints(limit, remaining, reset_after, window, retry_after)
