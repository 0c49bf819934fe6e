"""``client.analytics``: the /v1/analytics endpoints."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .._protocol import iso_date, path_segment
from ..errors import InvalidRequestError
from ..models import CampaignAnalytics, DailyStats, Mailbox, Overview

if TYPE_CHECKING:
    from .._calls import ClientCalls
    from .._config import Timeout
    from .._protocol import DateLike
    from .._retry import RetryPolicy

__all__ = ["Analytics"]

_CAMPAIGN_PATH = "/v1/analytics/campaigns/"


class Analytics:
    """The analytics endpoints, reached as ``client.analytics``."""

    __slots__ = ("_client",)

    def __init__(self, client: ClientCalls) -> None:
        self._client = client

    async def campaign(
        self,
        campaign_id: str,
        *,
        from_: DateLike | None = None,
        to: DateLike | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        cache: bool = True,
        max_age: float | None = None,
    ) -> CampaignAnalytics:
        """Detailed analytics of one campaign (GET /v1/analytics/campaigns/{id}).

        ``from_``/``to`` bound the period (a ``date``, ``datetime`` or ISO
        string); omitted, the numbers are all-time. With a client cache, an answer
        at most ``max_age`` seconds old (default: the cache's TTL) comes from it;
        ``cache=False`` neither reads nor stores. Identical calls in progress
        share one request unless the client says ``coalesce=False``.

        Raises:
            InvalidRequestError: an empty or whitespace id, a bad date, or a
                negative ``max_age`` (nothing is sent).
            NotFoundError: no campaign with this id (a cached 404 raises it again).
            SendKitError: any other failure, after retries.
        """
        if not self._client._coalesce and (not cache or self._client._cache is None):
            # Neither cache nor single flight: the bulk runs' own lane, the cheapest.
            fetch = self._campaign_fetcher(from_=from_, to=to, timeout=timeout, retry=retry)
            return await fetch(campaign_id)
        return await self._client._get_data(
            _CAMPAIGN_PATH + path_segment(campaign_id, "campaign_id"),
            CampaignAnalytics,
            params=_period(from_, to),
            timeout=timeout,
            retry=retry,
            cache=cache,
            max_age=max_age,
        )

    def _campaign_fetcher(
        self,
        *,
        from_: DateLike | None = None,
        to: DateLike | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> Callable[[str], Awaitable[CampaignAnalytics]]:
        """:meth:`campaign` with its options checked once, for one id or a million.

        Raises:
            InvalidRequestError: a bad date.
            ConfigurationError: a bad ``timeout``.
        """
        get = self._client._data_getter(
            CampaignAnalytics, params=_period(from_, to), timeout=timeout, retry=retry
        )

        def fetch(campaign_id: str) -> Awaitable[CampaignAnalytics]:
            # A plain function returning the pipeline's coroutine: a bulk run pays
            # for no extra coroutine per id.
            return get(_CAMPAIGN_PATH + path_segment(campaign_id, "campaign_id"))

        return fetch

    async def overview(
        self,
        *,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        cache: bool = True,
        max_age: float | None = None,
    ) -> Overview:
        """Workspace totals and rates (GET /v1/analytics/overview).

        Rates come as :class:`Percent` (``rates.open.percent == 45.0``, raw text kept).
        ``cache``/``max_age`` as for :meth:`campaign`.
        """
        return await self._client._get_data(
            "/v1/analytics/overview",
            Overview,
            timeout=timeout,
            retry=retry,
            cache=cache,
            max_age=max_age,
        )

    async def daily(
        self,
        *,
        from_: DateLike | None = None,
        to: DateLike | None = None,
        subsequence: str | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        cache: bool = True,
        max_age: float | None = None,
    ) -> list[DailyStats]:
        """Daily rows for the workspace, oldest first (GET /v1/analytics/daily).

        ``subsequence``: None for main + all subsequences combined, ``"main"``
        for the main sequence only, or a subsequence's 24-hex id. Without
        dates the API returns the last 30 days. ``cache``/``max_age`` as for :meth:`campaign`.

        Raises:
            InvalidRequestError: a malformed ``subsequence`` or date (nothing is sent).
        """
        return await self._daily(
            "/v1/analytics/daily", from_, to, subsequence, timeout, retry, cache, max_age
        )

    async def campaign_daily(
        self,
        campaign_id: str,
        *,
        from_: DateLike | None = None,
        to: DateLike | None = None,
        subsequence: str | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        cache: bool = True,
        max_age: float | None = None,
    ) -> list[DailyStats]:
        """Daily rows for one campaign (GET /v1/analytics/daily/campaigns/{id}).

        Raises:
            InvalidRequestError: a blank id, bad date or ``subsequence``.
            NotFoundError: no campaign with this id.
        """
        path = f"/v1/analytics/daily/campaigns/{path_segment(campaign_id, 'campaign_id')}"
        return await self._daily(path, from_, to, subsequence, timeout, retry, cache, max_age)

    async def _daily(
        self,
        path: str,
        from_: DateLike | None,
        to: DateLike | None,
        subsequence: str | None,
        timeout: float | Timeout | None,
        retry: RetryPolicy | None,
        cache: bool,
        max_age: float | None,
    ) -> list[DailyStats]:
        params = _daily_params(from_, to, subsequence)
        rows = await self._client._get_data(
            path,
            tuple[DailyStats, ...],
            params=params,
            timeout=timeout,
            retry=retry,
            cache=cache,
            max_age=max_age,
        )
        return list(rows)

    async def mailboxes(
        self,
        *,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
        cache: bool = True,
        max_age: float | None = None,
    ) -> list[Mailbox]:
        """Every sending mailbox (GET /v1/analytics/mailboxes); ``bounce_rate`` is a fraction.

        ``cache``/``max_age`` as for :meth:`campaign`.
        """
        rows = await self._client._get_data(
            "/v1/analytics/mailboxes",
            tuple[Mailbox, ...],
            timeout=timeout,
            retry=retry,
            cache=cache,
            max_age=max_age,
        )
        return list(rows)


def _period(from_: DateLike | None, to: DateLike | None) -> dict[str, str | None] | None:
    period = {"from": iso_date(from_, "from_"), "to": iso_date(to, "to")}
    return {k: v for k, v in period.items() if v is not None} or None


_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")


def _daily_params(
    from_: DateLike | None, to: DateLike | None, subsequence: str | None
) -> dict[str, str | None]:
    if (
        subsequence is not None
        and subsequence != "main"
        and not (isinstance(subsequence, str) and _OBJECT_ID.fullmatch(subsequence))
    ):
        raise InvalidRequestError(
            f"subsequence must be None, 'main' or a 24-hex subsequence id, got {subsequence!r}"
        )
    return {
        "from": iso_date(from_, "from_"),
        "to": iso_date(to, "to"),
        "subsequenceId": subsequence,
    }
