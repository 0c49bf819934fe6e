"""The exception tree itself: every class survives pickle (for multiprocessing, task queues)."""

from __future__ import annotations

import pickle
import re
from types import MappingProxyType
from typing import Any

import pytest

import sendkit_async
from sendkit_async import BulkReport, errors, from_wire
from sendkit_async.models import CampaignAnalytics
from tests.helpers import fixture

ERROR_CLASSES = [getattr(errors, name) for name in errors.__all__]


def example(cls: type[errors.SendKitError]) -> errors.SendKitError:
    """An instance of ``cls`` with every attribute it has set to a non-default value."""
    exc: errors.SendKitError
    if issubclass(cls, errors.APIStatusError):
        extra: dict[str, Any] = {"retry_after": 2.5} if cls is errors.RateLimitError else {}
        exc = cls(
            "boom",
            status=429 if cls is errors.RateLimitError else 418,
            error="Teapot",
            code=418,
            request_id="req-1",
            headers={"Location": "https://example.test/", "X-Request-Id": "req-1"},
            body="{" * 3000,
            method="GET",
            url="https://api.sendkit.ai/v1/x",
            **extra,
        )
    elif issubclass(cls, errors.APIConnectionError):
        exc = cls("reset", method="GET", url="https://api.sendkit.ai/v1/x")
    elif cls is errors.ResponseValidationError:
        exc = cls("bad", errors=("$.data: missing",), status=201, body="[]")
    elif cls is errors.BulkError:
        analytics = from_wire(fixture("analytics_campaign_current.json")["data"], CampaignAnalytics)
        failure = errors.NotFoundError("gone", status=404, headers={"A": "b"})
        report = BulkReport(3, 1, 1, 1, {"NotFoundError": 1}, 2, 0, 0, 0.0, 0.1)
        exc = cls(
            "1 of 3 ids failed",
            results={"a": analytics},
            failures={"b": failure},
            not_attempted=("c",),
            fatal=failure,
            report=report,
        )
    elif cls is errors.MissingDependencyError:
        exc = cls("needs pandas", name="pandas", extra="pandas")
    else:
        exc = cls("plain")
    exc.attempts = 3
    return exc


def comparable(value: Any) -> Any:
    """``value`` in a form that compares by content (exceptions compare by identity)."""
    if isinstance(value, BaseException):
        return (type(value), value.args, str(value), repr(value), comparable(vars(value)))
    if isinstance(value, (dict, MappingProxyType)):
        return (type(value), {k: comparable(v) for k, v in value.items()})
    return value


def test_every_error_class_is_exported() -> None:
    defined = {
        name
        for name, obj in vars(errors).items()
        if isinstance(obj, type)
        and issubclass(obj, BaseException)
        and obj.__module__ == errors.__name__
    }
    assert defined == set(errors.__all__)
    assert all(issubclass(cls, errors.SendKitError) for cls in ERROR_CLASSES)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_round_trips_through_pickle(cls: type[errors.SendKitError]) -> None:
    original = example(cls)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(original, protocol=protocol))  # noqa: S301 - our own bytes
        assert type(copy) is cls
        assert comparable(copy) == comparable(original)
        assert copy.attempts == 3
    if isinstance(original, errors.APIStatusError):
        assert isinstance(copy.headers, type(original.headers))  # still read-only
        assert copy.headers["x-request-id"] == "req-1"  # and case-insensitive
    if isinstance(original, errors.MissingDependencyError):
        assert (copy.name, copy.extra) == ("pandas", "pandas")
    if isinstance(original, errors.BulkError):
        assert copy.results == original.results
        assert copy.results["a"].status_breakdown == original.results["a"].status_breakdown


def _drawn_tree() -> dict[str, str]:
    """Class name -> parent name, as the errors module docstring draws the tree."""
    parents: dict[str, str] = {}
    stack: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^ {4}((?:[│ ] {3})*)(?:[├└]── )?([A-Z]\w+Error)\b", line)
        if not match:
            continue
        depth = len(match.group(1)) // 4 + (1 if "── " in line else 0)
        del stack[depth:]
        if stack:
            parents[match.group(2)] = stack[-1]
        stack.append(match.group(2))
    return parents


def test_the_docstring_tree_is_the_real_tree() -> None:
    drawn = _drawn_tree()
    assert set(drawn) | {"SendKitError"} == set(errors.__all__)
    for name, parent in drawn.items():
        assert getattr(errors, name).__bases__[0] is getattr(errors, parent), name


def test_shared_budget_error_lives_in_errors_and_keeps_its_old_path() -> None:
    from sendkit_async import redis_limiter

    assert redis_limiter.SharedBudgetUnavailableError is errors.SharedBudgetUnavailableError
    assert sendkit_async.SharedBudgetUnavailableError is errors.SharedBudgetUnavailableError
    assert issubclass(errors.SharedBudgetUnavailableError, errors.SendKitError)


def test_status_error_headers_ignore_case_and_stay_read_only() -> None:
    sent = {"Retry-After": "7", "X-Request-Id": "req-1"}
    exc = errors.RateLimitError("slow down", status=429, headers=sent)
    assert exc.headers["retry-after"] == exc.headers["Retry-After"] == "7"
    assert exc.headers.get("RETRY-AFTER") == "7"
    assert "x-request-id" in exc.headers
    assert "X-Missing" not in exc.headers
    assert 1 not in exc.headers  # type: ignore[comparison-overlap]
    assert exc.headers.get("x-missing") is None
    with pytest.raises(KeyError):
        exc.headers["x-missing"]
    assert list(exc.headers) == ["Retry-After", "X-Request-Id"]  # the server's spelling
    assert dict(exc.headers) == sent
    assert exc.headers == sent
    assert len(exc.headers) == 2
    with pytest.raises(TypeError):
        exc.headers["Retry-After"] = "0"  # type: ignore[index]
    sent["Retry-After"] = "99"  # a later change to the caller's dict does not leak in
    assert exc.headers["retry-after"] == "7"
    assert repr(exc.headers) == "{'Retry-After': '7', 'X-Request-Id': 'req-1'}"
