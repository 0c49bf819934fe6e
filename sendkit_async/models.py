"""Typed results: frozen attrs classes with Python names.

Wire names (``stepStats``, ``_id``, camelCase) are known only to the
converter; these classes are what callers see. Every count the API may omit
is ``int | None``. Derived rates are properties that never divide by zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

__all__ = [
    "Campaign",
    "CampaignAnalytics",
    "CampaignStats",
    "SequenceSplit",
    "SequenceStats",
    "StepStats",
    "Subsequence",
    "SubsequenceTrigger",
]


def _rate(part: int | None, whole: int | None) -> float:
    """``part / whole`` as a fraction in 0..1; 0.0 when either is missing or whole is 0."""
    if not part or not whole:
        return 0.0
    return part / whole


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


@attrs.frozen
class Campaign:
    """The campaign an analytics result belongs to.

    ``status`` is one of draft, active, paused, completed, archived, but kept
    as a plain string: the API may add statuses.
    """

    id: str
    name: str
    status: str


@attrs.frozen
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


@attrs.frozen
class StepStats(_Rates):
    """Numbers for one sequence step; ``step`` is the number exactly as the API sent it.

    The original reference numbers steps from 1, the current one from 0.
    """

    step: int
    sent: int | None = None
    opened: int | None = None
    clicked: int | None = None
    bounced: int | None = None


@attrs.frozen
class SequenceStats(_Rates):
    """Totals of one sequence kind (main or subsequences)."""

    sent: int | None = None
    opened: int | None = None
    clicked: int | None = None
    bounced: int | None = None
    replied: int | None = None


@attrs.frozen
class SequenceSplit:
    """The campaign's totals split between its main sequence and its subsequences."""

    main: SequenceStats | None = None
    subsequence: SequenceStats | None = None


@attrs.frozen
class SubsequenceTrigger:
    """What enrols a lead in a subsequence, e.g. ``type="ai_tag", value="interested"``."""

    type: str
    value: str | None = None


@attrs.frozen
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


@attrs.frozen
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
