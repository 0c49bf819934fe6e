"""The resources of :class:`~._sync.SendKit`: the async resources' methods, blocking.

:func:`_blocking` turns a coroutine function ``Callable[P, Coroutine[..., R]]`` into
``Callable[P, R]`` (and :func:`_iterating` an async generator function into one
returning a plain iterator), so a type checker sees the async signatures with the
results unwrapped, and they can never drift apart.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from ._portal import BlockingIterator, Portal
from ._raw import AsyncSendKitWithRawResponse
from .resources.analytics import Analytics
from .resources.campaigns import Campaigns

__all__ = ["SendKitWithRawResponse", "SyncAnalytics", "SyncCampaigns"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def _blocking(portal: Portal, method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """``method`` (a coroutine function) as a function that blocks until its coroutine ends."""
    run = portal.run

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        return run(method(*args, **kwargs))

    return call


def _iterating(
    portal: Portal, method: Callable[P, AsyncIterator[T]]
) -> Callable[P, BlockingIterator[T]]:
    """``method`` (an async generator function) as one returning a plain iterator."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> BlockingIterator[T]:
        return portal.iterate(method(*args, **kwargs))

    return call


class SyncAnalytics:
    """``client.analytics`` of :class:`SendKit`: :class:`Analytics`, blocking, same signatures."""

    __slots__ = ("campaign", "campaign_daily", "daily", "mailboxes", "overview")

    def __init__(self, portal: Portal, analytics: Analytics) -> None:
        self.campaign = _blocking(portal, analytics.campaign)
        self.campaign_daily = _blocking(portal, analytics.campaign_daily)
        self.daily = _blocking(portal, analytics.daily)
        self.mailboxes = _blocking(portal, analytics.mailboxes)
        self.overview = _blocking(portal, analytics.overview)


class SyncCampaigns:
    """``client.campaigns`` of :class:`SendKit`: ``list`` blocks, ``pages``/``iter``/``iter_ids``
    iterate."""

    __slots__ = ("iter", "iter_ids", "list", "pages")

    def __init__(self, portal: Portal, campaigns: Campaigns) -> None:
        self.list = _blocking(portal, campaigns.list)
        self.pages = _iterating(portal, campaigns.pages)
        self.iter = _iterating(portal, campaigns.iter)
        self.iter_ids = _iterating(portal, campaigns.iter_ids)


class SendKitWithRawResponse:
    """``client.with_raw_response`` of :class:`SendKit`: the async raw view, blocking."""

    __slots__ = ("analytics", "campaigns")

    def __init__(self, portal: Portal, raw: AsyncSendKitWithRawResponse) -> None:
        self.analytics = _RawAnalytics(portal, raw)
        self.campaigns = _RawCampaigns(portal, raw)


class _RawAnalytics:
    __slots__ = ("campaign", "campaign_daily", "daily", "mailboxes", "overview")

    def __init__(self, portal: Portal, raw: AsyncSendKitWithRawResponse) -> None:
        self.campaign = _blocking(portal, raw.analytics.campaign)
        self.campaign_daily = _blocking(portal, raw.analytics.campaign_daily)
        self.daily = _blocking(portal, raw.analytics.daily)
        self.mailboxes = _blocking(portal, raw.analytics.mailboxes)
        self.overview = _blocking(portal, raw.analytics.overview)


class _RawCampaigns:
    __slots__ = ("list", "pages")

    def __init__(self, portal: Portal, raw: AsyncSendKitWithRawResponse) -> None:
        self.list = _blocking(portal, raw.campaigns.list)
        self.pages = _iterating(portal, raw.campaigns.pages)
