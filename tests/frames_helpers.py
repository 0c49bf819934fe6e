"""Shared by the DataFrame tests: each library's frame reduced to plain Python, and test data."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import sendkit_async
from sendkit_async import Campaign, CampaignAnalytics, CampaignStats, from_wire
from sendkit_async.cli._output import CSV_COLUMNS
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
    if isinstance(value, pd.Timestamp) and value.tz is None:  # a date: naive, at midnight
        assert value == value.normalize()
        return value.date()
    return value


def _pandas_kind(dtype: Any) -> str:
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if isinstance(dtype, pd.StringDtype):
        assert dtype.na_value is pd.NA
        return "string"
    return {
        "Int64": "int",
        "float64": "float",
        "boolean": "bool",
        "datetime64[s]": "date",
        "datetime64[us, UTC]": "datetime",
    }[str(dtype)]


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
        ("datetime", pl.Datetime("us", "UTC")),
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
        pa.timestamp("us", tz="UTC"): "datetime",
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
