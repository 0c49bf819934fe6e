"""The one exception tree of sendkit-async.

Every error a call can raise derives from :class:`SendKitError`::

    SendKitError
    ├── ClientClosedError            the client was closed (or used outside its loop)
    ├── ConfigurationError           bad client options (no key, insecure URL); a ValueError
    ├── MissingDependencyError       an optional extra is not installed; an ImportError
    ├── InvalidRequestError          an argument rejected before sending; a ValueError
    ├── APIConnectionError           no usable HTTP response (DNS, refused, reset, TLS, ...)
    │   └── APITimeoutError          an attempt or the whole call ran out of time
    ├── APIStatusError               the server answered with a non-2xx status
    │   ├── RedirectError            3xx: never followed, so the key cannot leak to another origin
    │   ├── BadRequestError          400
    │   ├── AuthenticationError      401
    │   ├── PermissionDeniedError    403
    │   ├── NotFoundError            404
    │   ├── ConflictError            409
    │   ├── UnprocessableEntityError 422
    │   ├── RateLimitError           429 (``retry_after`` seconds or None)
    │   └── InternalServerError      >= 500
    ├── ResponseValidationError      a 2xx body that is not the documented JSON
    ├── BulkError                    some ids of a bulk call failed (results kept)
    ├── SharedBudgetUnavailableError Redis unreachable with on_redis_error="raise"
    │                                (also importable from sendkit_async.redis_limiter)
    └── UnexpectedError              a bulk run's id hit a non-SendKit exception (``__cause__``)

No error ever carries the API key: messages and reprs are built from the
status, redacted headers and a truncated body, never from aiohttp's own
exception text (whose repr includes the request headers); a key the server
echoes in an error answer is masked (``sk_***``) before the error is built.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: this module imports nothing of ours at run time
    from ._bulk import BulkReport
    from .models import CampaignAnalytics

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BulkError",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "InternalServerError",
    "InvalidRequestError",
    "MissingDependencyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RedirectError",
    "ResponseValidationError",
    "SendKitError",
    "SharedBudgetUnavailableError",
    "UnexpectedError",
    "UnprocessableEntityError",
]

BODY_LIMIT = 2000
"""How many characters of a response body an error keeps."""


class SendKitError(Exception):
    """Base class of every error raised by sendkit-async.

    ``attempts`` is how many HTTP attempts the call made before giving up
    (0 when nothing was sent); the retry layer fills it in.
    """

    attempts: int = 0

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        if self.attempts > 1:
            return f"{self.message} (after {self.attempts} attempts)"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The default, ``cls(*args)`` then ``__dict__``, cannot call keyword-only
        # constructors nor pickle the read-only headers view: rebuild without __init__.
        proxied = tuple(k for k, v in vars(self).items() if isinstance(v, MappingProxyType))
        state = {k: dict(v) if k in proxied else v for k, v in vars(self).items()}
        return (_restore, (type(self), self.args, state, proxied))


def _restore(
    cls: type[SendKitError], args: tuple[Any, ...], state: dict[str, Any], proxied: tuple[str, ...]
) -> SendKitError:
    """Unpickle an error: its class, args and attributes, read-only views made again."""
    exc = cls.__new__(cls, *args)
    for key, value in state.items():
        setattr(exc, key, MappingProxyType(value) if key in proxied else value)
    return exc


class _Headers(Mapping[str, str]):
    """A read-only view of response headers whose lookups ignore case (as HTTP does).

    Iteration gives the names as the server sent them; ``headers["retry-after"]`` and
    ``headers["Retry-After"]`` find the same value. Pickles as a plain dict of them.
    """

    __slots__ = ("_folded", "_items")

    def __init__(self, items: Mapping[str, str]) -> None:
        self._items = dict(items)
        self._folded = {name.lower(): value for name, value in self._items.items()}

    def __getitem__(self, name: str) -> str:
        if not isinstance(name, str):
            raise KeyError(name)
        return self._folded[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._folded

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(self._items)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Headers, (self._items,))


class ClientClosedError(SendKitError):
    """The client was used after ``aclose()``."""


class ConfigurationError(SendKitError, ValueError):
    """The client was given options it cannot work with."""


class MissingDependencyError(SendKitError, ImportError):
    """A feature needs an optional dependency that is not installed.

    Also an :class:`ImportError`, so code that already guards an optional import
    with ``except ImportError`` keeps working. ``name`` is the missing module
    (as on ImportError) and ``extra`` the sendkit-async extra that installs it;
    the message says ``pip install 'sendkit-async[<extra>]'``.
    """

    def __init__(self, message: str, *, name: str | None = None, extra: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.extra = extra

    def __reduce__(self) -> tuple[Any, ...]:
        # ImportError keeps ``name`` outside ``__dict__``: carry it in the state.
        restore, (cls, args, state, proxied) = super().__reduce__()
        return restore, (cls, args, {**state, "name": self.name}, proxied)


class InvalidRequestError(SendKitError, ValueError):
    """An argument was rejected before anything was sent."""


class APIConnectionError(SendKitError):
    """No usable HTTP response: the connection failed, was reset, or broke mid-body."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class APITimeoutError(APIConnectionError):
    """An attempt, or the whole call with its retries, ran out of time."""


class APIStatusError(SendKitError):
    """The API answered with a non-success status.

    Attributes:
        status: the HTTP status.
        error: the envelope's ``error`` (reason phrase), or None.
        message: the envelope's ``message``, or a description of the body.
        code: the envelope's ``code``, or None.
        request_id: the server's request id header, when present.
        headers: the response headers (read-only, credentials redacted); lookups
            ignore case: ``headers["retry-after"]`` is ``headers["Retry-After"]``.
        body: the start of the raw body text (at most ``BODY_LIMIT`` characters).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error: str | None = None,
        code: int | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: str = "",
        method: str = "",
        url: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.code = code
        self.request_id = request_id
        self.headers: Mapping[str, str] = _Headers(headers or {})
        self.body = body[:BODY_LIMIT]
        self.method = method
        self.url = url

    def __str__(self) -> str:
        where = f" for {self.method} {self.url}" if self.url else ""
        rid = f" [request id {self.request_id}]" if self.request_id else ""
        text = f"HTTP {self.status}{where}: {self.message}{rid}"
        if self.attempts > 1:
            text += f" (after {self.attempts} attempts)"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, message={self.message!r})"


class RedirectError(APIStatusError):
    """A 3xx answer. Redirects are never followed, so the key never reaches another origin."""

    @property
    def location(self) -> str | None:
        """The redirect target the server named, if any."""
        return self.headers.get("Location")


class BadRequestError(APIStatusError):
    """400: the API rejected the request's parameters."""


class AuthenticationError(APIStatusError):
    """401: the key is missing, malformed or unknown."""


class PermissionDeniedError(APIStatusError):
    """403: the key has no access to this resource (or a platform key lacks a workspace)."""


class NotFoundError(APIStatusError):
    """404: no such resource (for example an unknown campaign id)."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the resource's state."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was understood but its content is invalid."""


class RateLimitError(APIStatusError):
    """429: too many requests.

    ``retry_after`` is how many seconds the server asked us to wait, or None
    when it gave no hint.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """A 5xx answer (including proxies' HTML 502/503/504 pages).

    ``retry_after`` is the server's ``Retry-After`` in seconds (a 503 often sends
    one), or None. Only this request waits for it: a fault is not a throttle.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ResponseValidationError(SendKitError):
    """A success response whose body is not the documented JSON.

    ``errors`` lists one line per problem, each naming the field path
    (for example ``$.data.stats.sent``).
    """

    def __init__(
        self, message: str, *, errors: tuple[str, ...] = (), status: int = 200, body: str = ""
    ) -> None:
        super().__init__(message)
        self.errors = errors
        self.status = status
        self.body = body[:BODY_LIMIT]


class BulkError(SendKitError):
    """A bulk call in which some ids failed; nothing that succeeded is lost.

    Attributes:
        results: id -> analytics for every id that succeeded.
        failures: id -> the error that id ended with (an id that cannot be a
            dict key, such as a list passed by mistake, appears as its ``repr()``).
        not_attempted: ids never sent because the run stopped early
            (an authentication or permission error makes going on pointless).
        fatal: the error that stopped the run early, or None.
        report: the run's :class:`~sendkit_async.BulkReport`.
    """

    def __init__(
        self,
        message: str,
        *,
        results: Mapping[str, CampaignAnalytics],
        failures: Mapping[Any, SendKitError],
        not_attempted: tuple[Any, ...] = (),
        fatal: SendKitError | None = None,
        report: BulkReport | None = None,
    ) -> None:
        super().__init__(message)
        self.results: Mapping[str, CampaignAnalytics] = results
        self.failures = failures
        self.not_attempted = not_attempted
        self.fatal = fatal
        self.report: BulkReport | None = report


class SharedBudgetUnavailableError(SendKitError):
    """The shared rate-limit budget (Redis) could not be reached, and fallback is off.

    Raised by :class:`~sendkit_async.redis_limiter.RedisRateLimiter` with
    ``on_redis_error="raise"``; importing it from here never imports redis.
    """


class UnexpectedError(SendKitError):
    """An exception outside this tree (a bug, ours or a dependency's) while fetching one id.

    Bulk runs record it as that id's failure instead of losing the run; the
    original exception is ``__cause__``.
    """
