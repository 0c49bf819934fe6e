"""DataFrames: every converter's columns compared, dtype and value, with the models' own values."""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import sendkit_async
from sendkit_async import (
    AuthenticationError,
    BulkError,
    Campaign,
    CampaignAnalytics,
    CampaignResult,
    CampaignStats,
    CampaignSummary,
    DailyStats,
    InvalidRequestError,
    Mailbox,
    MissingDependencyError,
    NotFoundError,
    SendKitError,
    StepStats,
    Warmup,
    from_wire,
)
from sendkit_async.cli._output import CSV_COLUMNS, csv_row
from tests.helpers import fixture

Kinds = dict[str, str]


@attrs.frozen
class Table:
    """A frame reduced to plain Python: column names, a kind per column, values per column."""

    names: list[str]
    kinds: Kinds
    values: dict[str, list[Any]]


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        assert value == value.normalize()  # a date is midnight
        return value.date()
    return value


def _pandas_kind(dtype: Any) -> str:
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if isinstance(dtype, pd.StringDtype):
        assert dtype.na_value is pd.NA
        return "string"
    return {"Int64": "int", "float64": "float", "boolean": "bool", "datetime64[s]": "date"}[
        str(dtype)
    ]


def via_pandas(results: Any, **options: Any) -> Table:
    df = sendkit_async.to_pandas(results, **options)
    assert isinstance(df, pd.DataFrame)
    assert list(df.index) == list(range(len(df)))
    names = [str(c) for c in df.columns]
    return Table(
        names,
        {c: _pandas_kind(df[c].dtype) for c in names},
        {c: [_plain(v) for v in df[c].tolist()] for c in names},
    )


def _polars_kind(dtype: Any) -> str:
    for kind, pl_type in (
        ("int", pl.Int64),
        ("float", pl.Float64),
        ("string", pl.String),
        ("category", pl.Categorical),
        ("bool", pl.Boolean),
        ("date", pl.Date),
    ):
        if dtype == pl_type:
            return kind
    raise AssertionError(dtype)


def via_polars(results: Any, **options: Any) -> Table:
    df = sendkit_async.to_polars(results, **options)
    assert isinstance(df, pl.DataFrame)
    return Table(
        df.columns,
        {c: _polars_kind(df.schema[c]) for c in df.columns},
        {c: df[c].to_list() for c in df.columns},
    )


def _arrow_kind(type_: Any) -> str:
    if pa.types.is_dictionary(type_):
        assert type_.value_type == pa.string()
        return "category"
    return {
        pa.int64(): "int",
        pa.float64(): "float",
        pa.string(): "string",
        pa.bool_(): "bool",
        pa.date32(): "date",
    }[type_]


def via_arrow(results: Any, **options: Any) -> Table:
    table = sendkit_async.to_arrow(results, **options)
    assert isinstance(table, pa.Table)
    return Table(
        table.column_names,
        {f.name: _arrow_kind(f.type) for f in table.schema},
        {c: table.column(c).to_pylist() for c in table.column_names},
    )


CONVERTERS = pytest.mark.parametrize(
    "convert", [via_pandas, via_polars, via_arrow], ids=["pandas", "polars", "arrow"]
)
Convert = Callable[..., Table]

RATES = ("open_rate", "click_rate", "bounce_rate", "reply_rate")
CAMPAIGN_KINDS: Kinds = {
    c: {"id": "string", "name": "string", "status": "category"}.get(
        c, "float" if c in RATES else "int"
    )
    for c in CSV_COLUMNS
}


def campaign_row(a: CampaignAnalytics) -> dict[str, Any]:
    """What a campaign's row must hold, read from the model by hand."""
    s = a.stats
    return {
        "id": a.campaign.id,
        "name": a.campaign.name,
        "status": a.campaign.status,
        "total_leads": s.total_leads,
        "sent": s.sent,
        "delivered": s.delivered,
        "opened": s.opened,
        "clicked": s.clicked,
        "bounced": s.bounced,
        "replied": s.replied,
        "unsubscribed": s.unsubscribed,
        "total_replied": a.total_replied,
        "total_positive_replied": a.total_positive_replied,
        "open_rate": a.open_rate,
        "click_rate": a.click_rate,
        "bounce_rate": a.bounce_rate,
        "reply_rate": a.reply_rate,
        "steps": len(a.step_stats),
        "subsequences": len(a.subsequences),
    }


def blank_row(campaign_id: str | None, error: str) -> dict[str, Any]:
    return {**dict.fromkeys(CSV_COLUMNS), "id": campaign_id, "error": error}


def rows_of(table: Table) -> list[dict[str, Any]]:
    count = len(next(iter(table.values.values()), []))
    return [{c: table.values[c][i] for c in table.names} for i in range(count)]


SEED = from_wire(fixture("analytics_campaign_seed.json")["data"], CampaignAnalytics)
CURRENT = from_wire(fixture("analytics_campaign_current.json")["data"], CampaignAnalytics)
SPARSE = CampaignAnalytics(  # every count omitted but one, no steps
    campaign=Campaign("66000000000000000000000a", "Sparse", "paused"),
    stats=CampaignStats(sent=7),
)
CAMPAIGNS = [SEED, CURRENT, SPARSE]


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


def _bulk_error() -> BulkError:
    fatal = AuthenticationError("bad key", status=401)
    return BulkError(
        "stopped early",
        results={SEED.campaign.id: SEED, SPARSE.campaign.id: SPARSE},
        failures={"ffffffffffffffffffffffff": NotFoundError("gone", status=404)},
        not_attempted=("eeeeeeeeeeeeeeeeeeeeeeee",),
        fatal=fatal,
    )


@CONVERTERS
def test_bulk_error_failures_as_rows(convert: Convert) -> None:
    table = convert(_bulk_error())
    assert table.kinds == {**CAMPAIGN_KINDS, "error": "string"}
    assert rows_of(table) == [
        {**campaign_row(SEED), "error": None},
        {**campaign_row(SPARSE), "error": None},
        blank_row("ffffffffffffffffffffffff", "NotFoundError: HTTP 404: gone"),
        blank_row(
            "eeeeeeeeeeeeeeeeeeeeeeee",
            "not attempted: the run stopped early (AuthenticationError)",
        ),
    ]


@CONVERTERS
def test_bulk_error_failures_skipped(convert: Convert) -> None:
    table = convert(_bulk_error(), errors="skip")
    assert table.names == list(CSV_COLUMNS)
    assert rows_of(table) == [campaign_row(SEED), campaign_row(SPARSE)]


@CONVERTERS
def test_exceptions_in_a_list_and_in_a_mapping(convert: Convert) -> None:
    gone = NotFoundError("gone", status=404)
    listed = convert([SEED, gone, SPARSE])
    assert rows_of(listed)[1] == blank_row(None, "NotFoundError: HTTP 404: gone")  # id unknown
    mapped = convert({SEED.campaign.id: SEED, "f" * 24: gone})
    assert rows_of(mapped) == [
        {**campaign_row(SEED), "error": None},
        blank_row("f" * 24, "NotFoundError: HTTP 404: gone"),
    ]


@CONVERTERS
def test_campaign_results(convert: Convert) -> None:
    results: list[CampaignResult[CampaignAnalytics]] = [
        CampaignResult(SEED.campaign.id, value=SEED),
        CampaignResult("x" * 24, error=NotFoundError("gone", status=404)),
    ]
    assert rows_of(convert(results)) == [
        {**campaign_row(SEED), "error": None},
        blank_row("x" * 24, "NotFoundError: HTTP 404: gone"),
    ]
    assert rows_of(convert(iter(results), errors="skip")) == [campaign_row(SEED)]


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


@CONVERTERS
def test_a_count_beyond_64_bits_is_null_not_a_crash(convert: Convert) -> None:
    huge = attrs.evolve(SPARSE, stats=CampaignStats(sent=10**40, opened=3))
    table = convert([huge, SEED])
    assert table.values["sent"] == [None, 1200]
    assert table.values["opened"] == [3, 540]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([SEED, DAILY[0]], "cannot mix DailyStats rows into a table of CampaignAnalytics"),
        ([SEED, "664a1b2c3d4e5f6a7b8c9d02"], "cannot make a table row of str"),
        ([DAILY[0]], "cannot mix DailyStats rows into a table of Mailbox"),
    ],
)
def test_what_cannot_be_a_table(bad: Sequence[Any], message: str) -> None:
    model = Mailbox if message.endswith("Mailbox") else None
    with pytest.raises(InvalidRequestError, match=message):
        sendkit_async.to_arrow(bad, model=model)


def test_an_unknown_errors_option_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match='errors must be "rows" or "skip"'):
        sendkit_async.to_pandas(CAMPAIGNS, errors="raise")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("function", "module", "extra"),
    [
        (sendkit_async.to_pandas, "pandas", "pandas"),
        (sendkit_async.to_polars, "polars", "polars"),
        (sendkit_async.to_arrow, "pyarrow", "arrow"),
    ],
)
def test_a_missing_library_names_the_extra(
    function: Callable[..., Any], module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what `import` sees when it is absent
    with pytest.raises(MissingDependencyError) as caught:
        function(CAMPAIGNS)
    error = caught.value
    assert isinstance(error, SendKitError) and isinstance(error, ImportError)
    assert f"pip install 'sendkit-async[{extra}]'" in str(error)
    assert (error.name, error.extra) == (module, extra)
    assert isinstance(error.__cause__, ImportError)


def test_pandas_and_polars_do_not_need_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert via_pandas(CAMPAIGNS).values["sent"] == [1200, CURRENT.stats.sent, 7]
    assert via_polars(CAMPAIGNS).values["sent"] == [1200, CURRENT.stats.sent, 7]
    assert via_pandas(DAILY).kinds["date"] == "date"


def test_steps_count_main_sequence_steps_only() -> None:
    a = attrs.evolve(SPARSE, step_stats=(StepStats(step=1), StepStats(step=2)))
    assert via_arrow([a]).values["steps"] == [2]
    assert via_arrow([a]).values["subsequences"] == [0]
