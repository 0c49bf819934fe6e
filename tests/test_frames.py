"""DataFrames: every converter's columns compared, dtype and value, with the models' own values."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest

import sendkit_async
from sendkit_async import (
    CampaignAnalytics,
    CampaignStats,
    CampaignSummary,
    DailyStats,
    Mailbox,
    StepStats,
    Warmup,
    from_wire,
)
from sendkit_async.cli._output import CSV_COLUMNS, csv_row
from tests.frames_helpers import (
    CAMPAIGN_KINDS,
    CAMPAIGNS,
    CONVERTERS,
    CURRENT,
    RATES,
    SEED,
    SPARSE,
    Convert,
    Kinds,
    campaign_row,
    rows_of,
    via_arrow,
    via_pandas,
)
from tests.helpers import fixture


def test_the_fixtures_cover_omitted_and_present_counts() -> None:
    assert SEED.stats.total_leads == 500 and SEED.stats.delivered is None
    assert CURRENT.stats.total_leads is None and CURRENT.subsequences
    assert len({a.campaign.status for a in CAMPAIGNS}) >= 2


@CONVERTERS
def test_campaigns_column_by_column(convert: Convert) -> None:
    table = convert(CAMPAIGNS)
    assert table.names == [*CSV_COLUMNS, "error"]
    assert table.kinds == {**CAMPAIGN_KINDS, "error": "string"}
    assert rows_of(table) == [{**campaign_row(a), "error": None} for a in CAMPAIGNS]
    assert table.values["total_leads"] == [500, None, None]  # omitted counts are null
    assert table.values["open_rate"][0] == pytest.approx(540 / 1200)


@CONVERTERS
def test_skip_has_exactly_the_csv_columns(convert: Convert) -> None:
    table = convert(CAMPAIGNS, errors="skip")
    assert table.names == list(CSV_COLUMNS)
    assert rows_of(table) == [campaign_row(a) for a in CAMPAIGNS]


def test_csv_writer_and_frames_share_one_column_definition() -> None:
    assert tuple(sendkit_async.to_arrow([], errors="skip").column_names) == CSV_COLUMNS
    for a in CAMPAIGNS:
        expected = campaign_row(a)
        row = csv_row(a)
        assert list(row) == list(CSV_COLUMNS)
        for name in RATES:
            assert row[name] == f"{expected.pop(name):.4f}"
            row.pop(name)
        assert row == expected
    assert csv_row(CURRENT, total_leads=42)["total_leads"] == 42
    assert csv_row(SEED, total_leads=42)["total_leads"] == 500  # the body wins


@CONVERTERS
def test_status_is_a_category_of_the_observed_statuses(convert: Convert) -> None:
    table = convert(CAMPAIGNS)
    assert table.kinds["status"] == "category"
    if convert is via_pandas:
        df = sendkit_async.to_pandas(CAMPAIGNS)
        assert list(df["status"].cat.categories) == ["active", "paused"]


DAILY = [from_wire(d, DailyStats) for d in fixture("analytics_daily.json")["data"]]
DAILY_KINDS: Kinds = {
    "date": "date",
    **dict.fromkeys(("sent", "opened", "clicked", "bounced", "replied", "positive_replied"), "int"),
    **dict.fromkeys(("open_rate", "click_rate", "bounce_rate"), "float"),
}


@CONVERTERS
def test_daily_rows(convert: Convert) -> None:
    rows = [*DAILY, DailyStats(dt.date(2024, 6, 1))]  # a day with every count omitted
    table = convert(rows)
    assert table.names == list(DAILY_KINDS)
    assert table.kinds == DAILY_KINDS
    assert rows_of(table) == [
        {
            "date": d.date,
            "sent": d.sent,
            "opened": d.opened,
            "clicked": d.clicked,
            "bounced": d.bounced,
            "replied": d.replied,
            "positive_replied": d.positive_replied,
            "open_rate": d.open_rate,
            "click_rate": d.click_rate,
            "bounce_rate": d.bounce_rate,
        }
        for d in rows
    ]
    assert table.values["date"][:2] == [dt.date(2024, 5, 28), dt.date(2024, 5, 29)]
    assert table.values["sent"][-1] is None


MAILBOXES = [
    Mailbox(
        id="66aa00000000000000000001",
        email="ana@example.com",
        display_name="Ana",
        status="active",
        total_sent=1200,
        total_received=80,
        bounce_rate=0.02,
        sent_today=35,
        daily_send_limit=50,
        warmup=Warmup(enabled=True, status="active"),
    ),
    Mailbox(id="66aa00000000000000000002", email="bo@example.com", status="paused"),
]
MAILBOX_KINDS: Kinds = {
    "id": "string",
    "email": "string",
    "display_name": "string",
    "status": "category",
    "total_sent": "int",
    "total_received": "int",
    "bounce_rate": "float",
    "sent_today": "int",
    "daily_send_limit": "int",
    "warmup_enabled": "bool",
    "warmup_status": "category",
}


@CONVERTERS
def test_mailboxes(convert: Convert) -> None:
    table = convert(MAILBOXES)
    assert table.kinds == MAILBOX_KINDS
    assert table.names == list(MAILBOX_KINDS)
    expected = []
    for m in MAILBOXES:
        row = {f.name: getattr(m, f.name) for f in attrs.fields(Mailbox) if f.name != "warmup"}
        row["warmup_enabled"] = m.warmup.enabled if m.warmup else None
        row["warmup_status"] = m.warmup.status if m.warmup else None
        expected.append(row)
    assert rows_of(table) == expected
    assert table.values["warmup_enabled"] == [True, None]  # no warmup object: null, not False


@CONVERTERS
def test_listed_campaigns(convert: Convert) -> None:
    page = fixture("campaigns_page.json")["data"]
    summaries = [from_wire(item, CampaignSummary) for item in page]
    table = convert(summaries)
    assert table.names[:3] == ["id", "name", "status"]
    assert table.values["id"] == [s.id for s in summaries]
    assert table.values["total_leads"] == [
        s.stats.total_leads if s.stats else None for s in summaries
    ]
    assert table.kinds["status"] == "category"


@CONVERTERS
@pytest.mark.parametrize(
    ("model", "kinds"),
    [
        (None, {**CAMPAIGN_KINDS, "error": "string"}),
        (CampaignAnalytics, {**CAMPAIGN_KINDS, "error": "string"}),
        (DailyStats, DAILY_KINDS),
        (Mailbox, MAILBOX_KINDS),
    ],
)
def test_empty_input_has_the_columns_and_no_rows(
    convert: Convert, model: Any, kinds: Kinds
) -> None:
    table = convert([], model=model)
    assert table.names == list(kinds)
    assert table.kinds == kinds
    assert all(v == [] for v in table.values.values())


def test_steps_count_main_sequence_steps_only() -> None:
    a = attrs.evolve(SPARSE, step_stats=(StepStats(step=1), StepStats(step=2)))
    assert via_arrow([a]).values["steps"] == [2]
    assert via_arrow([a]).values["subsequences"] == [0]


@attrs.frozen
class _Event:
    """A model the API does not have (yet): a timestamp, a flag, a nested optional part."""

    at: dt.datetime
    done: bool | None = None
    stats: CampaignStats | None = None


@CONVERTERS
def test_a_new_model_field_reaches_every_table_with_its_type(
    convert: Convert, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sendkit_async import _frames, _tables

    columns = _tables.columns_of(_Event)
    assert [c.name for c in columns][:3] == ["at", "done", "stats_total_leads"]
    monkeypatch.setitem(_frames._TABLES, _Event, columns)
    at = dt.datetime(2024, 5, 28, 9, 30, tzinfo=dt.timezone.utc)
    table = convert([_Event(at, True, CampaignStats(sent=4)), _Event(at)])
    assert table.kinds["done"] == "bool"
    assert table.values["done"] == [True, None]
    assert table.values["stats_sent"] == [4, None]  # a missing nested part: null
    assert [_utc(v) for v in table.values["at"]] == [at, at]


def _utc(value: Any) -> dt.datetime:
    stamp = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    assert isinstance(stamp, dt.datetime) and stamp.utcoffset() == dt.timedelta(0)
    return stamp
