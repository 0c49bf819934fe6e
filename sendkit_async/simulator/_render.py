"""Turn generated data into the API's JSON bodies (wire names live here only)."""

from __future__ import annotations

import json
import random
from typing import Any

from . import _names
from ._data import TIMELINE_DAYS, Campaign, Workspace, day_date
from ._figures import Sequence, Step

JsonObj = dict[str, Any]


def dumps(obj: object) -> bytes:
    """Compact, key-order-preserving JSON (deterministic bytes)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def ok(data: object, **extra: object) -> bytes:
    return dumps({"success": True, "data": data, **extra})


def error_body(status: int, reason: str, message: str) -> bytes:
    return dumps({"error": reason, "message": message, "code": status})


def _step(st: Step) -> JsonObj:
    return {"sent": st.sent, "opened": st.opened, "clicked": st.clicked, "bounced": st.bounced}


def _step_stats(seq: Sequence, first: int) -> list[JsonObj]:
    return [{"_id": i, **_step(st)} for i, st in enumerate(seq.steps, first)]


def campaign_analytics(
    c: Campaign, shape: str, a: int | None = None, b: int | None = None
) -> JsonObj:
    """The ``data`` of ``GET /v1/analytics/campaigns/{id}`` for local days ``[a, b)``.

    Time-ranged figures come from the nested cumulative floors in ``_figures``; lead
    snapshots (totalLeads, statusBreakdown, addedCount, currentlyEnrolled) are not
    time-ranged and always show the current state.
    """
    days = c.active_days
    a = 0 if a is None else a
    b = days if b is None else b
    main = c.main.window(a, b, days)
    head = {"id": c.id, "name": c.name, "status": c.status}
    breakdown = dict(c.breakdown)
    mt = main.totals()
    if shape == "original":
        return {
            "campaign": head,
            "stats": {
                "totalLeads": c.total_leads,
                "sent": mt.sent,
                "opened": mt.opened,
                "clicked": mt.clicked,
                "bounced": mt.bounced,
                "replied": main.replied,
            },
            "stepStats": _step_stats(main, 1),
            "statusBreakdown": breakdown,
            "totalReplied": main.replied,
        }
    subs = [(s, s.figures.window(a, b, days)) for s in c.subsequences]
    sub_totals = [fig.totals() for _, fig in subs]
    st = Step(
        sum(t.sent for t in sub_totals),
        sum(t.opened for t in sub_totals),
        sum(t.clicked for t in sub_totals),
        sum(t.bounced for t in sub_totals),
    )
    replied = main.replied + sum(fig.replied for _, fig in subs)
    positive = main.positive_replied + sum(fig.positive_replied for _, fig in subs)
    sent = mt.sent + st.sent
    bounced = mt.bounced + st.bounced
    return {
        "campaign": head,
        "stats": {
            "sent": sent,
            "delivered": sent - bounced,
            "opened": mt.opened + st.opened,
            "clicked": mt.clicked + st.clicked,
            "replied": replied,
            "bounced": bounced,
            "unsubscribed": c.unsubscribed_in(a, b),
        },
        "bySequence": {"main": _step(mt), "subsequence": _step(st)},
        "stepStats": _step_stats(main, 0),
        "subsequences": [
            {
                "id": s.id,
                "name": s.name,
                "trigger": {"type": s.trigger_type, "value": s.trigger_value},
                "enabled": s.enabled,
                "archived": s.archived,
                "addedCount": s.added_count,
                "currentlyEnrolled": s.currently_enrolled,
                "stats": {**_step(t), "replied": fig.replied},
                "stepStats": _step_stats(fig, 0),
            }
            for (s, fig), t in zip(subs, sub_totals, strict=True)
        ],
        "statusBreakdown": breakdown,
        "totalReplied": replied,
        "totalPositiveReplied": positive,
    }


def campaign_list_item(c: Campaign) -> JsonObj:
    return {
        "_id": c.id,
        "name": c.name,
        "status": c.status,
        "stats": {
            "totalLeads": c.total_leads,
            "contacted": c.contacted,
            "contactedLeads": c.contacted,
            "totalEmailsSent": c.total_sent,
        },
    }


def _rate(part: int, whole: int) -> str:
    return f"{(100.0 * part / whole) if whole else 0.0:.1f}"


def overview(ws: Workspace) -> JsonObj:
    main = [0, 0, 0, 0]
    sub = [0, 0, 0, 0]
    replied = positive = active = 0
    for c in ws:
        for acc, seqs in ((main, (c.main,)), (sub, tuple(s.figures for s in c.subsequences))):
            for seq in seqs:
                t = seq.totals()
                acc[0] += t.sent
                acc[1] += t.opened
                acc[2] += t.clicked
                acc[3] += t.bounced
                replied += seq.replied
                positive += seq.positive_replied
        active += c.status == "active"
    sent, opened, clicked, bounced = (m + s for m, s in zip(main, sub, strict=True))
    keys = ("sent", "opened", "clicked", "bounced")
    return {
        "totalSent": sent,
        "totalOpened": opened,
        "totalClicked": clicked,
        "totalBounced": bounced,
        "totalReplied": replied,
        "totalPositiveReplied": positive,
        "totalCampaigns": ws.size,
        "activeCampaigns": active,
        "bySequence": {
            "main": dict(zip(keys, main, strict=True)),
            "subsequence": dict(zip(keys, sub, strict=True)),
        },
        "rates": {
            "open": _rate(opened, sent),
            "click": _rate(clicked, sent),
            "reply": _rate(replied, sent),
            "positiveReply": _rate(positive, sent),
            "bounce": _rate(bounced, sent),
        },
    }


_ROW_KEYS = ("sent", "opened", "clicked", "bounced", "replied", "positiveReplied")


def daily_rows(columns: list[list[int]], offset: int, lo: int, hi: int) -> list[JsonObj]:
    """Rows for timeline days ``[lo, hi]`` clipped to the timeline.

    ``columns`` hold per-day values starting at timeline day ``offset``; days outside the
    columns are zero rows (every day of the clipped range gets a row).
    """
    lo = max(lo, 0)
    hi = min(hi, TIMELINE_DAYS - 1)
    rows = []
    width = len(columns[0]) if columns else 0
    for day in range(lo, hi + 1):
        k = day - offset
        values = [col[k] for col in columns] if 0 <= k < width else [0] * 6
        rows.append({"_id": day_date(day), **dict(zip(_ROW_KEYS, values, strict=True))})
    return rows


def campaign_columns(c: Campaign, sub: str | None) -> list[list[int]] | None:
    """Per-day columns of one campaign: all sequences, "main" only, or one subsequence.

    Returns None when ``sub`` names no subsequence of this campaign.
    """
    days = c.active_days
    if sub == "main":
        return c.main.daily_columns(days)
    if sub is not None:
        for s in c.subsequences:
            if s.id == sub:
                return s.figures.daily_columns(days)
        return None
    cols = c.main.daily_columns(days)
    for s in c.subsequences:
        cols = [
            [x + y for x, y in zip(a, b, strict=True)]
            for a, b in zip(cols, s.figures.daily_columns(days), strict=True)
        ]
    return cols


def mailboxes(seed: int, campaigns: int) -> list[JsonObj]:
    rng = random.Random(f"sendkit-sim-mailboxes:{seed}")  # noqa: S311 - simulation data
    rows = []
    for _ in range(min(50, 3 + campaigns // 100)):
        first = rng.choice(_names.FIRST_NAMES)
        last = rng.choice(_names.LAST_NAMES)
        sent = int(200 * 100 ** rng.random())
        status = rng.choices(("active", "paused", "error"), weights=(85, 10, 5))[0]
        warm = rng.random() < 0.7
        limit = rng.choice((30, 40, 50, 75, 100))
        rows.append(
            {
                "_id": f"{rng.getrandbits(96):024x}",
                "email": f"{first}.{last}@{rng.choice(_names.DOMAINS)}",
                "displayName": f"{first.title()} {last.title()}",
                "status": status,
                "totalSent": sent,
                "totalReceived": int(sent * rng.uniform(0.02, 0.3)),
                "bounceRate": round(rng.uniform(0.0, 0.06), 3),
                "sentToday": rng.randint(0, limit) if status == "active" else 0,
                "dailySendLimit": limit,
                "warmup": {
                    "enabled": warm,
                    "status": rng.choice(("active", "completed")) if warm else "disabled",
                },
            }
        )
    return rows
