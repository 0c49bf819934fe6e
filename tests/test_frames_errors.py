"""DataFrames of failures (BulkError, exceptions, CampaignResult), bad input, missing libraries."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pytest

import sendkit_async
from sendkit_async import (
    AuthenticationError,
    BulkError,
    CampaignAnalytics,
    CampaignResult,
    CampaignStats,
    DailyStats,
    InvalidRequestError,
    Mailbox,
    MissingDependencyError,
    NotFoundError,
    SendKitError,
    from_wire,
)
from sendkit_async.cli._output import CSV_COLUMNS
from tests.frames_helpers import (
    CAMPAIGN_KINDS,
    CAMPAIGNS,
    CONVERTERS,
    CURRENT,
    SEED,
    SPARSE,
    Convert,
    blank_row,
    campaign_row,
    rows_of,
    via_pandas,
    via_polars,
)
from tests.helpers import fixture

DAILY = [from_wire(d, DailyStats) for d in fixture("analytics_daily.json")["data"]]


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
