"""One-call helpers for scripts: open a client, do one thing, close it."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any, Literal, overload

from ._bulk import ProgressCallback
from ._client import AsyncSendKit
from .errors import SendKitError
from .models import CampaignAnalytics

__all__ = ["gather_campaigns"]


@overload
async def gather_campaigns(
    ids: Iterable[str] | AsyncIterable[str],
    *,
    concurrency: int | None = None,
    return_exceptions: Literal[False] = False,
    progress: ProgressCallback | None = None,
    **client_options: Any,
) -> list[CampaignAnalytics]: ...


@overload
async def gather_campaigns(
    ids: Iterable[str] | AsyncIterable[str],
    *,
    concurrency: int | None = None,
    return_exceptions: bool,
    progress: ProgressCallback | None = None,
    **client_options: Any,
) -> list[CampaignAnalytics | SendKitError]: ...


async def gather_campaigns(
    ids: Iterable[str] | AsyncIterable[str],
    *,
    concurrency: int | None = None,
    return_exceptions: bool = False,
    progress: ProgressCallback | None = None,
    **client_options: Any,
) -> list[CampaignAnalytics] | list[CampaignAnalytics | SendKitError]:
    """Open a client (from the environment unless options say otherwise), gather, close.

    ``client_options`` go to :class:`AsyncSendKit` (``api_key``, ``base_url``,
    ``rate_limit``, ...). See :meth:`AsyncSendKit.gather_campaigns`.

    Raises:
        ConfigurationError: no key in the options or the environment.
        BulkError: as :meth:`AsyncSendKit.gather_campaigns`.
    """
    async with AsyncSendKit(**client_options) as client:
        return await client.gather_campaigns(
            ids, concurrency=concurrency, return_exceptions=return_exceptions, progress=progress
        )
