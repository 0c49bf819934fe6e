"""Typed results: frozen attrs classes with Python names.

Wire names (``stepStats``, ``_id``, camelCase) are known only to the
converter; these classes are what callers see. Every count the API may omit
is ``int | None``. Derived rates are properties that never divide by zero.

The classes have no ``__weakref__`` slot (``weakref_slot=False``): without
it, the converter's fast path can build them with plain attribute stores
(see ``_fastpath``), which a bulk run of thousands of bodies feels.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from types import MappingProxyType

import attrs

__all__ = [
    "Campaign",
    "CampaignAnalytics",
    "CampaignListStats",
    "CampaignPage",
    "CampaignStats",
    "CampaignSummary",
    "DailyStats",
    "Mailbox",
    "Overview",
    "OverviewRates",
    "Pagination",
    "Percent",
    "SequenceSplit",
    "SequenceStats",
    "StepStats",
    "Subsequence",
    "SubsequenceTrigger",
    "Warmup",
]


def _rate(part: int | None, whole: int | None) -> float:
    """``part / whole`` as a fraction in 0..1; 0.0 when either is missing or whole is 0.

    Also 0.0 when the quotient is beyond a float's range (counts of thousands of
    digits): such a body says nothing usable, and a rate must stay a finite float.
    """
    if not part or not whole:
        return 0.0
    try:
        return part / whole
    except OverflowError:
        return 0.0


def _frozen_mapping(value: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(value))


class _Rates:
    """Open, click, bounce and reply rates for anything with those counts."""

    __slots__ = ()
    sent: int | None
    opened: int | None
    clicked: int | None
    bounced: int | None

    @property
    def open_rate(self) -> float:
        """Opened / sent, a fraction in 0..1 (0.0 when nothing was sent)."""
        return _rate(self.opened, self.sent)

    @property
    def click_rate(self) -> float:
        """Clicked / sent, a fraction in 0..1 (0.0 when nothing was sent)."""
        return _rate(self.clicked, self.sent)

    @property
    def bounce_rate(self) -> float:
        """Bounced / sent, a fraction in 0..1 (0.0 when nothing was sent)."""
        return _rate(self.bounced, self.sent)


@attrs.frozen(weakref_slot=False)
class Campaign:
    """The campaign an analytics result belongs to.

    ``status`` is one of draft, active, paused, completed, archived, but kept
    as a plain string: the API may add statuses.
    """

    id: str
    name: str
    status: str


@attrs.frozen(weakref_slot=False)
class CampaignStats(_Rates):
    """Totals for a campaign. Every key is optional: the two documented shapes differ."""

    total_leads: int | None = None
    sent: int | None = None
    delivered: int | None = None
    opened: int | None = None
    clicked: int | None = None
    bounced: int | None = None
    replied: int | None = None
    unsubscribed: int | None = None

    @property
    def reply_rate(self) -> float:
        """Replied / sent, a fraction in 0..1 (0.0 when nothing was sent)."""
        return _rate(self.replied, self.sent)


@attrs.frozen(weakref_slot=False)
class StepStats(_Rates):
    """Numbers for one sequence step; ``step`` is the number exactly as the API sent it.

    The original reference numbers steps from 1, the current one from 0.
    """

    step: int
    sent: int | None = None
    opened: int | None = None
    clicked: int | None = None
    bounced: int | None = None


@attrs.frozen(weakref_slot=False)
class SequenceStats(_Rates):
    """Totals of one sequence kind (main or subsequences)."""

    sent: int | None = None
    opened: int | None = None
    clicked: int | None = None
    bounced: int | None = None
    replied: int | None = None


@attrs.frozen(weakref_slot=False)
class SequenceSplit:
    """The campaign's totals split between its main sequence and its subsequences."""

    main: SequenceStats | None = None
    subsequence: SequenceStats | None = None


@attrs.frozen(weakref_slot=False)
class SubsequenceTrigger:
    """What enrols a lead in a subsequence, e.g. ``type="ai_tag", value="interested"``."""

    type: str
    value: str | None = None


@attrs.frozen(weakref_slot=False)
class Subsequence:
    """A subsequence of the campaign, with its own totals and steps."""

    id: str
    name: str | None = None
    trigger: SubsequenceTrigger | None = None
    enabled: bool | None = None
    archived: bool | None = None
    added_count: int | None = None
    currently_enrolled: int | None = None
    stats: SequenceStats | None = None
    step_stats: tuple[StepStats, ...] = ()


@attrs.frozen(weakref_slot=False)
class CampaignAnalytics:
    """Detailed analytics of one campaign (GET /v1/analytics/campaigns/{id}).

    ``status_breakdown`` maps a lead status to its lead count; it is an open,
    read-only mapping (statuses are not a fixed set). ``by_sequence``,
    ``total_positive_replied`` and ``subsequences`` exist only in the current
    API shape: None / empty otherwise.
    """

    campaign: Campaign
    stats: CampaignStats = attrs.field(factory=CampaignStats)
    step_stats: tuple[StepStats, ...] = ()
    status_breakdown: Mapping[str, int] = attrs.field(
        factory=dict, converter=_frozen_mapping, hash=False
    )
    total_replied: int | None = None
    total_positive_replied: int | None = None
    by_sequence: SequenceSplit | None = None
    subsequences: tuple[Subsequence, ...] = ()

    def __reduce__(self) -> tuple[object, ...]:
        # attrs' state would hold the read-only mapping, which pickle refuses.
        values = attrs.astuple(self, recurse=False)
        return (
            CampaignAnalytics,
            tuple(dict(v) if v is self.status_breakdown else v for v in values),
        )

    @property
    def id(self) -> str:
        """The campaign's id."""
        return self.campaign.id

    @property
    def sent(self) -> int:
        """Emails sent (0 when the API omitted it)."""
        return self.stats.sent or 0

    @property
    def open_rate(self) -> float:
        """Opened / sent, a fraction in 0..1."""
        return self.stats.open_rate

    @property
    def click_rate(self) -> float:
        """Clicked / sent, a fraction in 0..1."""
        return self.stats.click_rate

    @property
    def bounce_rate(self) -> float:
        """Bounced / sent, a fraction in 0..1."""
        return self.stats.bounce_rate

    @property
    def reply_rate(self) -> float:
        """Replies / sent, in 0..1; falls back on ``total_replied`` when stats lack it."""
        replied = self.stats.replied if self.stats.replied is not None else self.total_replied
        return _rate(replied, self.stats.sent)

    @property
    def positive_reply_rate(self) -> float:
        """Positive replies / sent, a fraction in 0..1 (0.0 when unknown)."""
        return _rate(self.total_positive_replied, self.stats.sent)


@attrs.frozen(weakref_slot=False)
class Percent:
    """A rate the API sends as a string of percent with one decimal (``"45.0"``).

    ``raw`` keeps the string exactly as sent; :attr:`percent` is the number
    (45.0) and :attr:`fraction` the share (0.45); both None when the text is
    not a finite number (``"nan"``, or digits beyond a float's range).
    """

    raw: str

    @property
    def percent(self) -> float | None:
        """The rate in percent, e.g. 45.0."""
        try:
            value = float(self.raw)
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    @property
    def fraction(self) -> float | None:
        """The rate as a fraction in 0..1, e.g. 0.45."""
        value = self.percent
        return None if value is None else value / 100

    def __str__(self) -> str:
        return f"{self.raw}%"


@attrs.frozen(weakref_slot=False)
class OverviewRates:
    """Workspace-wide rates, in percent as the API sends them."""

    open: Percent | None = None
    click: Percent | None = None
    reply: Percent | None = None
    positive_reply: Percent | None = None
    bounce: Percent | None = None


@attrs.frozen(weakref_slot=False)
class Overview:
    """Workspace totals (GET /v1/analytics/overview)."""

    total_sent: int | None = None
    total_opened: int | None = None
    total_clicked: int | None = None
    total_bounced: int | None = None
    total_replied: int | None = None
    total_positive_replied: int | None = None
    total_campaigns: int | None = None
    active_campaigns: int | None = None
    by_sequence: SequenceSplit | None = None
    rates: OverviewRates = attrs.field(factory=OverviewRates)


@attrs.frozen(weakref_slot=False)
class DailyStats(_Rates):
    """One day of sending (GET /v1/analytics/daily and /daily/campaigns/{id})."""

    date: dt.date
    sent: int | None = None
    opened: int | None = None
    clicked: int | None = None
    bounced: int | None = None
    replied: int | None = None
    positive_replied: int | None = None


@attrs.frozen(weakref_slot=False)
class Warmup:
    """A mailbox's warm-up state."""

    enabled: bool | None = None
    status: str | None = None


@attrs.frozen(weakref_slot=False)
class Mailbox:
    """One sending mailbox (GET /v1/analytics/mailboxes).

    ``bounce_rate`` is a FRACTION as the API sends it (0.02 means 2 %),
    unlike the overview's percent strings.
    """

    id: str
    email: str | None = None
    display_name: str | None = None
    status: str | None = None
    total_sent: int | None = None
    total_received: int | None = None
    bounce_rate: float | None = None
    sent_today: int | None = None
    daily_send_limit: int | None = None
    warmup: Warmup | None = None


@attrs.frozen(weakref_slot=False)
class CampaignListStats:
    """The light totals the campaign listing carries."""

    total_leads: int | None = None
    contacted: int | None = None
    contacted_leads: int | None = None
    total_emails_sent: int | None = None


@attrs.frozen(weakref_slot=False)
class CampaignSummary:
    """A campaign as the listing shows it (GET /v1/campaigns)."""

    id: str
    name: str | None = None
    status: str | None = None
    stats: CampaignListStats | None = None


@attrs.frozen(weakref_slot=False)
class Pagination:
    """Where a page sits in the listing; pass ``next_cursor`` as ``cursor`` for the next."""

    limit: int | None = None
    total: int | None = None
    has_more: bool = False
    next_cursor: str | None = None


@attrs.frozen(weakref_slot=False)
class CampaignPage:
    """One page of the campaign listing."""

    items: tuple[CampaignSummary, ...]
    pagination: Pagination
