"""Deterministic workspace generation: campaigns, sequences, lead breakdowns, time windows.

Everything derives from ``(seed, index)``: a campaign is generated on first use from a
hash of its seed and position, so building a 100,000-campaign workspace only builds the
id list. Numbers are internally consistent by construction (opened <= sent, clicked <=
opened, bounced <= sent, replied <= sent, positive <= replied, lead statuses sum to
totalLeads).

Time model: the simulated "today" is the fixed ``ANCHOR_DATE`` (so bodies are
byte-identical from run to run), the timeline is the ``TIMELINE_DAYS`` days ending on it,
and every campaign sends during a window of ``active_days`` consecutive days. Figures for
a date range come from the *nested cumulative floors* of ``Sequence`` (in ``_figures``,
with ``Step``), which keep every inequality above in any range.
"""

from __future__ import annotations

import hashlib
import operator
import random
from collections.abc import Iterator
from datetime import date, timedelta

import attrs

from . import _names
from ._figures import Sequence, Step

ANCHOR_DATE = date(2025, 6, 30)
TIMELINE_DAYS = 365
TIMELINE_START = ANCHOR_DATE - timedelta(days=TIMELINE_DAYS - 1)
STATUSES = ("draft", "active", "paused", "completed", "archived")
_STATUS_CUTS = ((10, "draft"), (45, "active"), (60, "paused"), (90, "completed"), (100, "archived"))
BREAKDOWN_KEYS = (
    "active",
    "completed",
    "paused",
    "bounced",
    "removed",
    "failed",
    "unsubscribed",
    "replied",
    "pending",
)

AGGREGATE_CHUNK = 256
# status -> (min active days, max active days, min contacted share, max contacted share)
_WINDOWS = {
    "active": (5, 120, 0.25, 0.9),
    "paused": (3, 90, 0.2, 0.8),
    "completed": (14, 150, 0.9, 1.0),
    "archived": (7, 150, 0.6, 1.0),
}


@attrs.frozen
class Subsequence:
    """A subsequence attached to a campaign (current API shape only)."""

    id: str
    name: str
    trigger_type: str
    trigger_value: str
    enabled: bool
    archived: bool
    added_count: int
    currently_enrolled: int
    figures: Sequence


@attrs.frozen
class Campaign:
    """One generated campaign; ``start_day`` counts from ``TIMELINE_START``."""

    index: int
    id: str
    name: str
    status: str
    total_leads: int
    contacted: int
    start_day: int
    active_days: int
    main: Sequence
    unsubscribed: int
    breakdown: tuple[tuple[str, int], ...]
    subsequences: tuple[Subsequence, ...]

    @property
    def total_sent(self) -> int:
        return self.main.sent + sum(s.figures.sent for s in self.subsequences)

    def local_window(self, lo_day: int, hi_day: int) -> tuple[int, int]:
        """Clip timeline days ``[lo_day, hi_day]`` (inclusive) to local days ``[a, b)``."""
        d = self.active_days
        a = min(max(lo_day - self.start_day, 0), d)
        b = min(max(hi_day + 1 - self.start_day, 0), d)
        return a, max(a, b)

    def unsubscribed_in(self, a: int, b: int) -> int:
        """Unsubscribes during local days ``[a, b)``, paced like main-sequence sends."""
        total = self.main.sent
        if not total or (a <= 0 and b >= self.active_days):
            return self.unsubscribed if total else 0

        def cum(k: int) -> int:
            sent_k = self.main.cumulative(k, self.active_days)[0]
            return self.unsubscribed * sum(s.sent for s in sent_k) // total

        return cum(b) - cum(a)


def _digest(seed: int, index: int) -> bytes:
    return hashlib.blake2b(b"sendkit-sim:%d:%d" % (seed, index), digest_size=16).digest()


def campaign_core(seed: int, index: int) -> tuple[str, str]:
    """The cheap part of a campaign, (name, status), used for listing filters."""
    d = _digest(seed, index)
    prefix = _names.CAMPAIGN_PREFIXES[d[0] % len(_names.CAMPAIGN_PREFIXES)]
    audience = _names.CAMPAIGN_AUDIENCES[d[1] % len(_names.CAMPAIGN_AUDIENCES)]
    purpose = _names.CAMPAIGN_PURPOSES[d[2] % len(_names.CAMPAIGN_PURPOSES)]
    name = f"{audience} {purpose}" if d[3] < 80 else f"{prefix} {audience} {purpose}"
    roll = int.from_bytes(d[4:6], "big") % 100
    status = next(s for cut, s in _STATUS_CUTS if roll < cut)
    return name, status


def _make_sequence(
    rng: random.Random, first_sent: int, n_steps: int, reply_share: tuple[float, float]
) -> Sequence:
    open_rate = rng.uniform(0.15, 0.65)
    click_rate = rng.uniform(0.05, 0.3)
    bounce_rate = rng.uniform(0.005, 0.05)
    steps = []
    sent = first_sent
    for _ in range(n_steps):
        opened = min(sent, int(sent * open_rate * rng.uniform(0.8, 1.1)))
        clicked = int(opened * click_rate)
        bounced = int(sent * bounce_rate * rng.uniform(0.5, 1.0))
        steps.append(Step(sent, opened, clicked, bounced))
        sent = int(sent * rng.uniform(0.5, 0.9))
    replied = int(first_sent * rng.uniform(*reply_share))
    positive = int(replied * rng.uniform(0.2, 0.6))
    return Sequence(tuple(steps), replied, positive)


def generate_campaign(seed: int, index: int, campaign_id: str, *, subsequences: bool) -> Campaign:
    """Generate campaign ``index``; the main sequence does not depend on ``subsequences``."""
    name, status = campaign_core(seed, index)
    digest_int = int.from_bytes(_digest(seed, index), "big")
    rng = random.Random(digest_int)  # noqa: S311 - simulation data, not security
    total_leads = int(40 * 60 ** rng.random())
    if status == "draft":
        days, coverage, start = 0, 0.0, TIMELINE_DAYS
    else:
        low, high, cov_lo, cov_hi = _WINDOWS[status]
        coverage = rng.uniform(cov_lo, cov_hi)
        days = rng.randint(low, high)
        end = TIMELINE_DAYS if status == "active" else rng.randint(days, TIMELINE_DAYS - 1)
        start = end - days
    contacted = round(total_leads * coverage)
    main = _make_sequence(rng, contacted, rng.randint(1, 5), (0.01, 0.09))
    unsubscribed = int(contacted * rng.uniform(0.0, 0.03))

    subs: list[Subsequence] = []
    if subsequences and contacted > 0:
        rng2 = random.Random(digest_int + 1)  # noqa: S311
        count = rng2.choices((0, 1, 2), weights=(50, 35, 15))[0]
        for tpl in rng2.sample(_names.SUBSEQUENCES, count):
            added = int(contacted * rng2.uniform(0.02, 0.2))
            enrolled = int(added * rng2.random()) if status == "active" else 0
            enabled = rng2.random() < 0.8
            subs.append(
                Subsequence(
                    id=f"{rng2.getrandbits(96):024x}",
                    name=tpl[0],
                    trigger_type=tpl[1],
                    trigger_value=tpl[2],
                    enabled=enabled,
                    archived=(not enabled) and rng2.random() < 0.3,
                    added_count=added,
                    currently_enrolled=enrolled,
                    figures=_make_sequence(rng2, added, rng2.randint(1, 3), (0.0, 0.15)),
                )
            )

    bounced = main.totals().bounced + sum(s.figures.totals().bounced for s in subs)
    replied = main.replied + sum(s.figures.replied for s in subs)
    left = contacted
    counts = dict.fromkeys(BREAKDOWN_KEYS, 0)
    counts["pending"] = total_leads - contacted
    for key, want in (("bounced", bounced), ("replied", replied), ("unsubscribed", unsubscribed)):
        counts[key] = min(want, left)
        left -= counts[key]
    counts["failed"] = int(left * rng.uniform(0.0, 0.03))
    counts["removed"] = int(left * rng.uniform(0.0, 0.02))
    left -= counts["failed"] + counts["removed"]
    in_progress = {"active": "active", "paused": "paused"}.get(status, "completed")
    if status in ("active", "paused"):
        counts["completed"] = int(left * rng.uniform(0.1, 0.5))
        left -= counts["completed"]
    counts[in_progress] += left
    breakdown = tuple((k, v) for k, v in counts.items() if v)

    return Campaign(
        index=index,
        id=campaign_id,
        name=name,
        status=status,
        total_leads=total_leads,
        contacted=contacted,
        start_day=start,
        active_days=days,
        main=main,
        unsubscribed=unsubscribed,
        breakdown=breakdown,
        subsequences=tuple(subs),
    )


class Workspace:
    """A generated workspace: ids up front, campaigns lazily, aggregates on first use."""

    def __init__(self, *, seed: int, campaigns: int, subsequences: bool = True) -> None:
        self.seed = seed
        self.size = campaigns
        self.subsequences = subsequences
        mid = hashlib.blake2b(b"sendkit-sim-ids:%d" % seed, digest_size=5).hexdigest()
        base = int(mid, 16)
        # ObjectId layout: 4-byte timestamp, 5 random bytes, 3-byte counter.
        self.ids: list[str] = [
            f"{0x65A00000 + i * 61:08x}{mid}{(base + i) & 0xFFFFFF:06x}" for i in range(campaigns)
        ]
        self.index_of: dict[str, int] = {cid: i for i, cid in enumerate(self.ids)}
        self._campaigns: dict[int, Campaign] = {}
        self._cores: list[tuple[str, str]] | None = None
        self._daily: dict[str, list[list[int]]] | None = None
        self._sub_owner: dict[str, tuple[int, int]] | None = None

    def campaign(self, index: int) -> Campaign:
        found = self._campaigns.get(index)
        if found is None:
            found = generate_campaign(
                self.seed, index, self.ids[index], subsequences=self.subsequences
            )
            self._campaigns[index] = found
        return found

    def find(self, campaign_id: str) -> Campaign | None:
        index = self.index_of.get(campaign_id)
        return None if index is None else self.campaign(index)

    def __iter__(self) -> Iterator[Campaign]:
        return (self.campaign(i) for i in range(self.size))

    @property
    def cores(self) -> list[tuple[str, str]]:
        """(name, status) of every campaign, in listing order."""
        if self._cores is None:
            self._cores = [campaign_core(self.seed, i) for i in range(self.size)]
        return self._cores

    def subsequence_owner(self, sub_id: str) -> tuple[Campaign, int] | None:
        for _ in self.aggregate():
            pass
        assert self._sub_owner is not None
        found = self._sub_owner.get(sub_id)
        return None if found is None else (self.campaign(found[0]), found[1])

    def timeline_columns(self, which: str) -> list[list[int]]:
        """Workspace per-day columns over the timeline; ``which`` is "all" or "main"."""
        for _ in self.aggregate():
            pass
        assert self._daily is not None
        return self._daily[which]

    def generate_all(self, chunk: int = AGGREGATE_CHUNK) -> Iterator[None]:
        """Generate every campaign, yielding every ``chunk`` campaigns (a cooperative step)."""
        for start in range(0, self.size, chunk):
            for i in range(start, min(start + chunk, self.size)):
                self.campaign(i)
            yield

    def aggregate(self, chunk: int = AGGREGATE_CHUNK) -> Iterator[None]:
        """Build the workspace timeline and the subsequence index once, in yielding steps.

        Costly for big workspaces (seconds per 100,000 campaigns): the server drives this
        generator with ``await asyncio.sleep(0)`` between steps so it keeps serving.
        """
        if self._daily is not None:
            return
        main = [[0] * TIMELINE_DAYS for _ in range(6)]
        subs = [[0] * TIMELINE_DAYS for _ in range(6)]
        owners: dict[str, tuple[int, int]] = {}
        for c in self:
            seqs = [(c.main, main)] + [(s.figures, subs) for s in c.subsequences]
            for seq, target in seqs:
                for acc, col in zip(target, seq.daily_columns(c.active_days), strict=True):
                    for k, v in enumerate(col, c.start_day):
                        acc[k] += v
            for j, s in enumerate(c.subsequences):
                owners[s.id] = (c.index, j)
            if c.index % chunk == chunk - 1:
                yield
        if self._daily is None:  # another driver may have finished first
            both = [list(map(operator.add, a, b)) for a, b in zip(main, subs, strict=True)]
            self._sub_owner = owners
            self._daily = {"main": main, "all": both}


def day_number(d: date) -> int:
    """Timeline day of a date (0 = ``TIMELINE_START``; may be out of range)."""
    return (d - TIMELINE_START).days


def day_date(n: int) -> str:
    return (TIMELINE_START + timedelta(days=n)).isoformat()
