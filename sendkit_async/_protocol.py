"""Pure protocol logic: headers, paths, envelopes and errors.

Nothing here awaits or touches aiohttp (as gidgethub's ``sansio``): every
function takes plain values (status, headers, body) so it is tested with
recorded samples and plain synchronous tests. Reading rate-limit hints from
headers lives in ``_hints`` (same layer); its public names are re-exported
here, so ``protocol.rate_limit_hints`` and ``protocol.NO_HINTS`` are the very
same objects.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any, TypeAlias
from urllib.parse import quote

import cattrs

from . import errors
from ._converter import structure, validation_problems
from ._hints import NO_HINTS, RateLimitHints, _get, parse_retry_after, rate_limit_hints

__all__ = [
    "DATE_FORMS",
    "NO_HINTS",
    "REQUEST_ID_HEADERS",
    "STATUS_ERRORS",
    "UNDECODABLE",
    "DateLike",
    "RateLimitHints",
    "auth_headers",
    "decode_json",
    "error_from_response",
    "is_platform_key",
    "iso_date",
    "parse_envelope",
    "parse_retry_after",
    "path_segment",
    "rate_limit_hints",
    "redact_headers",
    "request_id",
    "structure_field",
]


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


DateLike: TypeAlias = dt.date | dt.datetime | str
"""What date parameters accept: a ``date``, a ``datetime`` or an ISO 8601 string."""


def iso_date(value: DateLike | None, what: str = "date") -> str | None:
    """``value`` as the ISO 8601 text the API takes (None stays None).

    Accepted: a ``date``, a ``datetime``, or a string of one of the two forms
    the API documents, ``YYYY-MM-DD`` or a date-time with a ``T``
    (:data:`DATE_FORMS`); other ISO 8601 spellings (week dates, ``20250601``,
    a space instead of ``T``) are refused rather than sent for the server to
    guess.

    Raises:
        InvalidRequestError: anything else, or a string naming no real date or time.
    """
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if not isinstance(value, str):
        raise errors.InvalidRequestError(
            f"{what} must be an ISO 8601 date or date-time ({_ACCEPTED}), "
            f"got {type(value).__name__}"
        )
    text = value.strip()
    match = _ISO_DATE.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        year, month, day, hour, minute, second, sign, off_h, off_m = match.groups()
        dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0))
        if int(second or 0) > 59 or (sign and (int(off_h) > 23 or int(off_m) > 59)):
            raise ValueError(text)
    except ValueError:
        raise errors.InvalidRequestError(
            f"{what} must be an ISO 8601 date or date-time ({_ACCEPTED}), got {value!r}"
        ) from None
    return text


DATE_FORMS = "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|\u00b1HH:MM]"
"""The string forms :func:`iso_date` accepts, as its errors name them."""
_ACCEPTED = f"a date, a datetime or a string {DATE_FORMS}"

_ISO_DATE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,6})?)?"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))?)?"
)


# --------------------------------------------------------------------------- responses


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A plain copy of ``headers`` with credentials replaced by ``<redacted>``."""
    return {k: ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}


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
    Like ``json.loads`` it raises RecursionError for a body nested too deeply:
    the callers below catch :data:`UNDECODABLE` at their boundary.
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

UNDECODABLE: tuple[type[Exception], ...] = (ValueError, RecursionError, TypeError, OverflowError)
"""What decoding or structuring a hostile body can raise (``[`` * 100_000 gives a
RecursionError, an integer beyond Python's digit limit a ValueError): every
boundary below turns these into our errors."""


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
    except UNDECODABLE:
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
    if status >= 500:
        # A 503's Retry-After is for this request alone (the retry waits for it).
        hints = rate_limit_hints(headers, status=status, now=now)
        return errors.InternalServerError(message, retry_after=hints.retry_after, **kwargs)
    cls = STATUS_ERRORS.get(status, errors.APIStatusError)
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
    except UNDECODABLE as exc:
        what = "nested too deeply" if isinstance(exc, RecursionError) else "not JSON"
        raise errors.ResponseValidationError(
            f"response body is {what}", errors=(f"$: {what}",), status=status, body=_text(body)
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
    except _UNSTRUCTURABLE as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            problems = tuple(validation_problems(exc, f"$.{key}"))
        else:
            problems = (f"$.{key}: {exc}",)
        raise errors.ResponseValidationError(
            "response does not match the documented shape: " + "; ".join(problems[:5]),
            errors=problems,
            status=status,
            body=_dump(payload),
        ) from None


_UNSTRUCTURABLE: tuple[type[Exception], ...] = (cattrs.BaseValidationError, KeyError, *UNDECODABLE)


def _dump(payload: Mapping[str, Any]) -> str:
    """The start of ``payload`` as JSON text, for an error; never raises what it meets."""
    try:
        return json.dumps(payload)[: errors.BODY_LIMIT]
    except UNDECODABLE:
        return "<body not shown: it cannot be encoded again>"
