"""``client.campaigns``: the campaign listing, one page or all of it."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING

from .._protocol import structure_field
from ..errors import InvalidRequestError, ResponseValidationError
from ..models import CampaignPage, CampaignSummary, Pagination

if TYPE_CHECKING:
    from .._calls import ClientCalls
    from .._config import Timeout
    from .._retry import RetryPolicy

__all__ = ["Campaigns"]

MAX_PAGE = 100


class Campaigns:
    """The campaign listing, reached as ``client.campaigns``."""

    __slots__ = ("_client",)

    def __init__(self, client: ClientCalls) -> None:
        self._client = client

    async def list(
        self,
        *,
        status: str | None = None,
        search: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> CampaignPage:
        """One page of campaigns (GET /v1/campaigns).

        Raises:
            InvalidRequestError: ``limit`` outside 1..100 (nothing is sent).
        """
        if limit is not None and not (
            isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= MAX_PAGE
        ):
            raise InvalidRequestError(f"limit must be an integer from 1 to {MAX_PAGE}: {limit!r}")
        params = {
            "status": status,
            "search": search,
            "limit": None if limit is None else str(limit),
            "cursor": cursor,
        }
        envelope = await self._client._get_envelope(
            "/v1/campaigns", params=params, timeout=timeout, retry=retry
        )
        items = structure_field(envelope, "data", tuple[CampaignSummary, ...])
        pagination = structure_field(envelope, "pagination", Pagination)
        return CampaignPage(items=items, pagination=pagination)

    async def pages(
        self,
        *,
        status: str | None = None,
        search: str | None = None,
        page_size: int = MAX_PAGE,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncGenerator[CampaignPage, None]:
        """Every page of the listing, following ``nextCursor`` while ``hasMore``.

        One request per page, made when the previous page has been consumed.
        Stops when ``hasMore`` is false even if a cursor is present, goes on
        over an empty page while ``hasMore`` is true.

        Raises:
            InvalidRequestError: ``page_size`` outside 1..100 (nothing is sent).
            ResponseValidationError: the server repeats a cursor or says
                ``hasMore`` without one (we refuse to loop forever).
        """
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = await self.list(
                status=status,
                search=search,
                limit=page_size,
                cursor=cursor,
                timeout=timeout,
                retry=retry,
            )
            yield page
            if not page.pagination.has_more:
                return
            cursor = page.pagination.next_cursor
            if not cursor:
                raise ResponseValidationError(
                    "listing says hasMore but gives no nextCursor",
                    errors=("$.pagination.nextCursor: missing while hasMore is true",),
                )
            if cursor in seen:
                raise ResponseValidationError(
                    f"listing repeated the cursor {cursor!r}; stopping instead of looping",
                    errors=("$.pagination.nextCursor: repeated",),
                )
            seen.add(cursor)

    async def iter(
        self,
        *,
        status: str | None = None,
        search: str | None = None,
        page_size: int = MAX_PAGE,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncIterator[CampaignSummary]:
        """Every campaign, page after page (see :meth:`pages`).

        Raises:
            InvalidRequestError: ``page_size`` outside 1..100 (nothing is sent).
            ResponseValidationError: the server repeats a cursor or says
                ``hasMore`` without one (we refuse to loop forever).
        """
        pages = self.pages(
            status=status, search=search, page_size=page_size, timeout=timeout, retry=retry
        )
        async with aclosing(pages):
            async for page in pages:
                for item in page.items:
                    yield item

    async def iter_ids(
        self,
        *,
        status: str | None = None,
        search: str | None = None,
        page_size: int = MAX_PAGE,
    ) -> AsyncIterator[str]:
        """The id of every campaign, streamed: feed it to ``client.iter_campaigns``."""
        async for campaign in self.iter(status=status, search=search, page_size=page_size):
            yield campaign.id
