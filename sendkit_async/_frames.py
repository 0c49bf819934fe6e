"""Results as DataFrames: :func:`to_pandas`, :func:`to_polars`, :func:`to_arrow`.

One column definition (``_tables``) and one pass that reads the columns out of
the model objects as Python lists; each library then builds its own typed
columns from them, so pandas and polars need neither each other nor pyarrow.
Every library is imported inside the function that needs it (importing
``sendkit_async`` never imports one), and a missing one is a
:class:`~sendkit_async.errors.MissingDependencyError` naming the extra to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ._bulk import CampaignResult
from ._tables import CAMPAIGN_COLUMNS, DAILY_COLUMNS, MAILBOX_COLUMNS, SUMMARY_COLUMNS, Column, Kind
from .errors import BulkError, InvalidRequestError, MissingDependencyError
from .models import CampaignAnalytics, CampaignSummary, DailyStats, Mailbox

if TYPE_CHECKING:
    import pandas
    import polars

__all__ = [
    "Errors",
    "FrameInput",
    "Model",
    "columns",
    "require_extra",
    "to_arrow",
    "to_pandas",
    "to_polars",
]

Row: TypeAlias = (
    CampaignAnalytics
    | CampaignResult[CampaignAnalytics]
    | BaseException
    | DailyStats
    | Mailbox
    | CampaignSummary
)
FrameInput: TypeAlias = BulkError | Mapping[str, CampaignAnalytics | BaseException] | Iterable[Row]
"""What the converters take: see :func:`to_arrow`."""
Model: TypeAlias = type[CampaignAnalytics | DailyStats | Mailbox | CampaignSummary]
Errors: TypeAlias = Literal["rows", "skip"]

_TABLES: dict[type, tuple[Column, ...]] = {
    CampaignAnalytics: CAMPAIGN_COLUMNS,
    DailyStats: DAILY_COLUMNS,
    Mailbox: MAILBOX_COLUMNS,
    CampaignSummary: SUMMARY_COLUMNS,
}
_INT64 = (-(2**63), 2**63 - 1)


def require_extra(module: str, extra: str, feature: str) -> ModuleType:
    """Import an optional library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'sendkit-async[{extra}]'",
            name=module,
            extra=extra,
        ) from exc


def _error_text(error: BaseException) -> str:
    # Our errors never carry the key (see errors.py), so their text is safe to keep.
    if isinstance(error, _NotAttempted):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _model_of(item: object) -> type | None:
    if isinstance(item, (CampaignResult, BaseException)):
        return CampaignAnalytics
    for model in _TABLES:
        if isinstance(item, model):
            return model
    raise InvalidRequestError(
        f"cannot make a table row of {type(item).__name__}: give CampaignAnalytics, "
        "CampaignResult, DailyStats, Mailbox or CampaignSummary objects, or a BulkError"
    )


def _items(results: FrameInput) -> Iterable[tuple[Any, object]]:
    """(id or None, item) pairs of any accepted input."""
    if isinstance(results, BulkError):
        yield from results.results.items()
        yield from results.failures.items()
        why = f"the run stopped early ({type(results.fatal).__name__})" if results.fatal else ""
        for campaign_id in results.not_attempted:
            yield campaign_id, _NotAttempted(why or "the run stopped early")
    elif isinstance(results, Mapping):
        yield from results.items()
    else:
        for item in results:
            if isinstance(item, CampaignResult):
                yield item.id, (item.error if item.error is not None else item.value)
            else:
                yield None, item


class _NotAttempted(Exception):
    """Stands for an id a bulk run never sent (its ``error`` text)."""

    def __str__(self) -> str:
        return f"not attempted: {self.args[0]}"


def columns(
    results: FrameInput, *, errors: Errors = "rows", model: Model | None = None
) -> dict[str, tuple[Kind, list[Any]]]:
    """The table of ``results`` as Python lists: column name -> (kind, values).

    The core of the three converters; see :func:`to_arrow` for what it accepts.

    Raises:
        InvalidRequestError: an unknown ``errors`` option, an object that is not a
            result, or results of different models mixed in one table.
    """
    if errors not in ("rows", "skip"):
        raise InvalidRequestError(f'errors must be "rows" or "skip", got {errors!r}')
    rows: list[Any] = []  # model objects; None where the row is a failure
    ids: list[Any] = []  # the id of each failure row (None when the input had none)
    texts: list[str | None] = []
    failed = False
    kind_of_rows = model
    for campaign_id, item in _items(results):
        found = _model_of(item)
        if kind_of_rows is None:
            kind_of_rows = found
        elif found is not kind_of_rows:
            raise InvalidRequestError(
                f"cannot mix {found.__name__ if found else ''} rows into a table of "
                f"{kind_of_rows.__name__} rows"
            )
        if isinstance(item, BaseException):
            if errors == "skip":
                continue
            failed = True
            rows.append(None)
            ids.append(None if campaign_id is None else str(campaign_id))
            texts.append(_error_text(item))
        else:
            rows.append(item)
            ids.append(None)
            texts.append(None)
    table = _TABLES[kind_of_rows or CampaignAnalytics]
    out: dict[str, tuple[Kind, list[Any]]] = {}
    for column in table:
        if failed:
            values = [None if row is None else column.get(row) for row in rows]
            if column.name == "id":
                values = [
                    i if row is None else v for row, v, i in zip(rows, values, ids, strict=True)
                ]
        else:
            values = list(map(column.get, rows))
        out[column.name] = (column.kind, values)
    if table is CAMPAIGN_COLUMNS and errors == "rows":
        out["error"] = (Kind.STRING, texts)
    return out


def _fit_int64(values: list[Any]) -> list[Any]:
    """Counts beyond 64 bits (a hostile body) become null: no such count is real."""
    low, high = _INT64
    return [v if v is None or low <= v <= high else None for v in values]


def _build(kind: Kind, values: list[Any], make: Callable[[Kind, list[Any]], Any]) -> Any:
    """``make(kind, values)``; again with counts beyond int64 as null if they overflowed."""
    try:
        return make(kind, values)
    except (OverflowError, TypeError):
        if kind is not Kind.INT:
            raise
        return make(kind, _fit_int64(values))


def _pa_type(pa: Any, kind: Kind) -> Any:
    return {
        Kind.STRING: pa.string(),
        Kind.CATEGORY: pa.string(),  # then dictionary-encoded
        Kind.INT: pa.int64(),
        Kind.FLOAT: pa.float64(),
        Kind.BOOL: pa.bool_(),
        Kind.DATE: pa.date32(),
        Kind.DATETIME: pa.timestamp("us", tz="UTC"),
    }[kind]


def to_arrow(results: FrameInput, *, errors: Errors = "rows", model: Model | None = None) -> Any:
    """A ``pyarrow.Table`` of results, one row per result (extra ``arrow``).

    ``results`` is any of: ``CampaignAnalytics`` objects (``gather_campaigns``,
    ``analytics.campaign``), with ``SendKitError`` items among them
    (``return_exceptions=True``) or as ``CampaignResult`` (``iter_campaigns``);
    a mapping id -> analytics or error; a :class:`BulkError` (its results, then its
    failures, then the ids not attempted); ``DailyStats`` rows (``daily()``),
    ``Mailbox`` rows (``mailboxes()``) or ``CampaignSummary`` rows (``campaigns.iter()``).

    Campaign tables have the CLI's CSV columns; with ``errors="rows"`` (the default)
    a failed id is a row with only ``id`` (null when the input did not say which id
    failed) and ``error`` (``"NotFoundError: HTTP 404 ..."``) set, and the ``error``
    column is there (null on every fetched row) even when nothing failed; with
    ``errors="skip"`` failures are left out and there is no ``error`` column.
    Counts are int64 (null when the API omitted them), rates float64, a ``status``
    dictionary-encoded, ``date`` date32. Empty input gives the columns of ``model``
    (default: campaign analytics) and no rows.

    Raises:
        MissingDependencyError: pyarrow is not installed.
        InvalidRequestError: see :func:`columns`.
    """
    pa = require_extra("pyarrow", "arrow", "to_arrow()")

    def make(kind: Kind, values: list[Any]) -> Any:
        array = pa.array(values, type=_pa_type(pa, kind))
        return array.dictionary_encode() if kind is Kind.CATEGORY else array

    data = columns(results, errors=errors, model=model)
    arrays = [_build(kind, values, make) for kind, values in data.values()]
    return pa.Table.from_arrays(arrays, names=list(data))


def _pandas_array(pd: Any, np: Any, kind: Kind, values: list[Any]) -> Any:
    if kind is Kind.INT:
        return pd.array(values, dtype="Int64")
    if kind is Kind.FLOAT:
        return np.array(values, dtype="float64")  # None -> NaN
    if kind is Kind.STRING:
        return pd.array(values, dtype="string")
    if kind is Kind.CATEGORY:
        return pd.Categorical(values)
    if kind is Kind.BOOL:
        return pd.array(values, dtype="boolean")
    if kind is Kind.DATE:
        return pd.array(np.array(values, dtype="datetime64[D]").astype("datetime64[s]"))
    return pd.array(pd.to_datetime(values, utc=True))


def to_pandas(
    results: FrameInput, *, errors: Errors = "rows", model: Model | None = None
) -> pandas.DataFrame:
    """A ``pandas.DataFrame`` of results, one row per result (extra ``pandas``).

    Takes what :func:`to_arrow` takes, with the same columns. Counts are nullable
    ``Int64`` (``pd.NA`` when the API omitted them), rates ``float64``, text the
    nullable ``string`` dtype, a ``status`` ``category``, ``date`` ``datetime64[s]``
    at midnight, flags ``boolean``. pyarrow is not needed.

    Raises:
        MissingDependencyError: pandas is not installed.
        InvalidRequestError: see :func:`columns`.
    """
    pd = require_extra("pandas", "pandas", "to_pandas()")
    np = require_extra("numpy", "pandas", "to_pandas()")
    data = columns(results, errors=errors, model=model)
    frame = {
        name: _build(kind, values, lambda k, v: _pandas_array(pd, np, k, v))
        for name, (kind, values) in data.items()
    }
    result: pandas.DataFrame = pd.DataFrame(frame)
    return result


def _pl_type(pl: Any, kind: Kind) -> Any:
    return {
        Kind.STRING: pl.String,
        Kind.CATEGORY: pl.Categorical,
        Kind.INT: pl.Int64,
        Kind.FLOAT: pl.Float64,
        Kind.BOOL: pl.Boolean,
        Kind.DATE: pl.Date,
        Kind.DATETIME: pl.Datetime("us", "UTC"),
    }[kind]


def to_polars(
    results: FrameInput, *, errors: Errors = "rows", model: Model | None = None
) -> polars.DataFrame:
    """A ``polars.DataFrame`` of results, one row per result (extra ``polars``).

    Takes what :func:`to_arrow` takes, with the same columns. Counts are ``Int64``
    (null when the API omitted them), rates ``Float64``, a ``status``
    ``Categorical``, ``date`` ``Date``. pyarrow is not needed.

    Raises:
        MissingDependencyError: polars is not installed.
        InvalidRequestError: see :func:`columns`.
    """
    pl = require_extra("polars", "polars", "to_polars()")
    series = [
        _build(kind, values, lambda k, v: pl.Series(v, dtype=_pl_type(pl, k))).alias(name)
        for name, (kind, values) in columns(results, errors=errors, model=model).items()
    ]
    result: polars.DataFrame = pl.DataFrame(series)
    return result
