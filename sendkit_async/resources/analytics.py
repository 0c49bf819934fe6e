"""``client.analytics``: the /v1/analytics endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._protocol import iso_date, path_segment
from ..models import CampaignAnalytics

if TYPE_CHECKING:
    from .._client import AsyncSendKit
    from .._config import Timeout
    from .._protocol import DateLike
    from .._retry import RetryPolicy

__all__ = ["Analytics"]


class Analytics:
    """The analytics endpoints, reached as ``client.analytics``."""

    __slots__ = ("_client",)

    def __init__(self, client: AsyncSendKit) -> None:
        self._client = client

    async def campaign(
        self,
        campaign_id: str,
        *,
        from_: DateLike | None = None,
        to: DateLike | None = None,
        timeout: float | Timeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> CampaignAnalytics:
        """Detailed analytics of one campaign (GET /v1/analytics/campaigns/{id}).

        ``from_``/``to`` bound the period (a ``date``, ``datetime`` or ISO
        string); omitted, the numbers are all-time.

        Raises:
            InvalidRequestError: an empty or whitespace id, or a bad date (nothing is sent).
            NotFoundError: no campaign with this id.
            SendKitError: any other failure, after retries.
        """
        path = f"/v1/analytics/campaigns/{path_segment(campaign_id, 'campaign_id')}"
        params = {"from": iso_date(from_, "from_"), "to": iso_date(to, "to")}
        return await self._client._get_data(
            path, CampaignAnalytics, params=params, timeout=timeout, retry=retry
        )
