"""Client options: defaults, environment variables and their validation (pure)."""

from __future__ import annotations

import ipaddress
import os
import warnings
from collections.abc import Mapping
from typing import Any

import attrs
from yarl import URL

from . import errors
from ._priority import Priority, as_priority
from ._retry import RetryPolicy

__all__ = ["DEFAULT_BASE_URL", "SendKitWarning", "Timeout", "resolve_base_url", "resolve_key"]

DEFAULT_BASE_URL = "https://api.sendkit.ai"
ENV_API_KEY = "SENDKIT_API_KEY"
ENV_WORKSPACE_ID = "SENDKIT_WORKSPACE_ID"
ENV_BASE_URL = "SENDKIT_BASE_URL"


def resolve_priority(value: object) -> Priority:
    """A ``priority=`` option checked.

    Raises:
        ConfigurationError: anything but ``"interactive"`` or ``"background"``.
    """
    try:
        return as_priority(value)
    except ValueError as exc:
        raise errors.ConfigurationError(str(exc)) from None


class SendKitWarning(UserWarning):
    """A client option was accepted but probably not what the caller meant."""


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"timeout {attribute.name} must be > 0 or None, got {value!r}")


@attrs.frozen
class Timeout:
    """Per-attempt time limits in seconds (None: no limit).

    ``total`` bounds one attempt from sending to the last byte of the body
    (a server dripping bytes cannot keep it alive); ``connect`` bounds
    opening a new connection (TCP and TLS handshakes). The whole call,
    retries included, is bounded by :attr:`RetryPolicy.deadline`.
    """

    total: float | None = attrs.field(default=30.0, validator=_positive_or_none)
    connect: float | None = attrs.field(default=10.0, validator=_positive_or_none)


def as_timeout(value: float | Timeout | None, default: Timeout) -> Timeout:
    """Accept a number (the per-attempt total) or a :class:`Timeout`."""
    if value is None:
        return default
    if isinstance(value, Timeout):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise errors.ConfigurationError(f"timeout must be a number or Timeout, got {value!r}")
    return attrs.evolve(default, total=float(value))


def _header_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent as an HTTP header value, or None when it can.

    The answer never quotes the value: it may be a secret.
    """
    if value != value.strip():
        return "starts or ends with whitespace"
    for ch in value:
        if ch in "\r\n":
            return "contains a line break"
        if ch == "\0":
            return "contains a NUL character"
        if (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F:
            return "contains a control character"
        if ord(ch) > 0x7E:
            return "contains a non-ASCII character"
    return None


def resolve_key(api_key: str | None, env: Mapping[str, str] = os.environ) -> str:
    """The key from the argument, else from ``SENDKIT_API_KEY``.

    Raises:
        ConfigurationError: no key, a blank one, or one that is not a valid HTTP
            header value (the message never quotes the key).
    """
    key = api_key if api_key is not None else env.get(ENV_API_KEY)
    if key is None or not key.strip():
        raise errors.ConfigurationError(
            "no API key: pass AsyncSendKit(api_key=...) or set the SENDKIT_API_KEY "
            "environment variable"
        )
    if key != key.strip() or any(ch in key for ch in "\r\n"):
        raise errors.ConfigurationError("the API key contains whitespace or line breaks")
    problem = _header_problem(key)
    if problem is not None:
        raise errors.ConfigurationError(f"the API key {problem}: it cannot be sent in a header")
    return key


def resolve_workspace(
    workspace_id: str | None, platform_key: bool, env: Mapping[str, str] = os.environ
) -> str | None:
    """The workspace id to send: only with platform keys; ignored (with a warning) otherwise.

    Raises:
        ConfigurationError: the id is not a valid HTTP header value (not quoted).
    """
    given = workspace_id if workspace_id is not None else env.get(ENV_WORKSPACE_ID)
    if not given:
        return None
    problem = _header_problem(given)
    if problem is not None:
        raise errors.ConfigurationError(
            f"the workspace id {problem}: it cannot be sent in a header"
        )
    if not platform_key:
        warnings.warn(
            "workspace_id is ignored: workspace keys (sk_...) are scoped to one workspace; "
            "X-Workspace-Id is sent only with platform keys (sk_user_...)",
            SendKitWarning,
            stacklevel=4,
        )
        return None
    return given


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_base_url(
    base_url: str | None, *, allow_insecure_http: bool, env: Mapping[str, str] = os.environ
) -> str:
    """The base URL without a trailing slash.

    Raises:
        ConfigurationError: credentials in the URL (named, never quoted), not http(s),
            or plain http to a non-loopback host without ``allow_insecure_http=True``
            (the key would travel in clear).
    """
    raw = base_url or env.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    try:
        url = URL(raw)
    except ValueError:
        raise errors.ConfigurationError("base_url is not a valid URL") from None
    if url.raw_user is not None or url.raw_password is not None:
        # Checked first: every later message quotes the URL, and this one must not.
        raise errors.ConfigurationError(
            "base_url must not contain a user name or password "
            "(the API key is the only credential; remove the 'user:password@' part)"
        )
    if url.scheme not in ("http", "https") or not url.host:
        raise errors.ConfigurationError(f"base_url must be an http(s) URL with a host: {raw!r}")
    if url.query_string or url.fragment:
        raise errors.ConfigurationError(f"base_url must not have a query or fragment: {raw!r}")
    if url.scheme == "http" and not _is_loopback(url.host) and not allow_insecure_http:
        raise errors.ConfigurationError(
            f"refusing plain http to {url.host}: the API key would travel in clear. "
            "Use https, or pass allow_insecure_http=True if you really mean it"
        )
    return raw.rstrip("/")


def as_retry(
    retry: RetryPolicy | None, max_retries: int | None, default: RetryPolicy
) -> RetryPolicy:
    """Combine a policy and a ``max_retries`` shortcut."""
    policy = retry if retry is not None else default
    if max_retries is not None:
        policy = attrs.evolve(policy, max_retries=max_retries)
    return policy
