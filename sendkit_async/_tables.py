"""The columns of the flat tables: one definition for the CLI's CSV and the DataFrames.

A table is a tuple of :class:`Column`: a name, a kind (what the value is, not
how a library stores it) and a getter that reads it from one model object.
The columns are derived from the attrs fields of :mod:`sendkit_async.models`
(a nested attrs field is flattened, either inline or with its name as a prefix),
so a field added to a model appears in every table, CSV and frame at once; only
derived values (rates, counts of steps) are named here. Pure: no pandas, no
pyarrow; ``_frames`` maps each kind to a library's dtype.
"""

from __future__ import annotations

import datetime as dt
import enum
import operator
import types
import typing
from collections.abc import Callable, Collection
from typing import Any

import attrs

from .models import (
    CampaignAnalytics,
    CampaignSummary,
    DailyStats,
    Mailbox,
)

__all__ = [
    "CAMPAIGN_COLUMNS",
    "DAILY_COLUMNS",
    "MAILBOX_COLUMNS",
    "SUMMARY_COLUMNS",
    "Column",
    "Kind",
    "columns_of",
]


class Kind(enum.Enum):
    """What a column holds; every kind may be null except where the model forbids it."""

    STRING = "string"
    CATEGORY = "category"  # a string from a small open set (a status)
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"


@attrs.frozen
class Column:
    """One column: its name, its kind and how to read it from a row's object."""

    name: str
    kind: Kind
    get: Callable[[Any], Any] = attrs.field(eq=False, repr=False)


_SCALARS: tuple[tuple[type, Kind], ...] = (
    (bool, Kind.BOOL),  # before int: a bool is an int
    (int, Kind.INT),
    (float, Kind.FLOAT),
    (str, Kind.STRING),
    (dt.datetime, Kind.DATETIME),  # before date: a datetime is a date
    (dt.date, Kind.DATE),
)


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (hint, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _kind(name: str, hint: Any) -> Kind | None:
    if not isinstance(hint, type):
        return None  # a tuple of steps, a mapping: not a flat value
    for scalar, kind in _SCALARS:
        if issubclass(hint, scalar):
            if kind is Kind.STRING and (name == "status" or name.endswith("_status")):
                return Kind.CATEGORY
            return kind
    return None


def _optional_get(outer: Callable[[Any], Any], inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def get(row: Any) -> Any:
        parent = outer(row)
        return None if parent is None else inner(parent)

    return get


def columns_of(
    cls: type,
    *,
    inline: Collection[str] = (),
    skip: Collection[str] = (),
    _path: str = "",
    _prefix: str = "",
    _optional_parent: Callable[[Any], Any] | None = None,
) -> tuple[Column, ...]:
    """The flat columns of an attrs model class, in field order.

    A scalar field is a column; a nested attrs field is flattened: its columns keep
    their own names when the field is in ``inline``, else take ``<field>_`` as a
    prefix. Fields in ``skip`` and fields that are not flat (tuples, mappings) are
    left out. A getter reads through a nested field that may be None (null then).
    """
    hints = typing.get_type_hints(cls)
    out: list[Column] = []
    for field in attrs.fields(cls):
        if field.name in skip:
            continue
        hint, optional = _unwrap_optional(hints[field.name])
        path = f"{_path}{field.name}"
        if attrs.has(hint):
            prefix = _prefix if field.name in inline else f"{_prefix}{field.name}_"
            parent: Callable[[Any], Any] | None = _optional_parent
            if optional:
                parent = _chain(_optional_parent, operator.attrgetter(path))
            out.extend(
                columns_of(
                    hint,
                    _path="" if optional else f"{path}.",
                    _prefix=prefix,
                    _optional_parent=parent,
                )
            )
            continue
        kind = _kind(field.name, hint)
        if kind is None:
            continue
        get: Callable[[Any], Any] = operator.attrgetter(path)
        if _optional_parent is not None:
            get = _optional_get(_optional_parent, get)
        out.append(Column(f"{_prefix}{field.name}", kind, get))
    return tuple(out)


def _chain(first: Callable[[Any], Any] | None, then: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return then if first is None else _optional_get(first, then)


def _rates(cls: type, names: tuple[str, ...]) -> tuple[Column, ...]:
    """Float columns read from the model's rate properties (checked to exist)."""
    for name in names:
        if not isinstance(getattr(cls, name, None), property):
            raise TypeError(f"{cls.__name__}.{name} is not a property")  # pragma: no cover
    return tuple(Column(name, Kind.FLOAT, operator.attrgetter(name)) for name in names)


def _table(*parts: tuple[Column, ...]) -> tuple[Column, ...]:
    columns = tuple(c for part in parts for c in part)
    names = [c.name for c in columns]
    if len(set(names)) != len(names):  # pragma: no cover - a model change would need a rename
        raise TypeError(f"duplicate column names: {names}")
    return columns


CAMPAIGN_COLUMNS = _table(
    # id, name, status; the totals (total_leads ... unsubscribed); total_replied, ...
    columns_of(CampaignAnalytics, inline=("campaign", "stats"), skip=("by_sequence",)),
    _rates(CampaignAnalytics, ("open_rate", "click_rate", "bounce_rate", "reply_rate")),
    (
        Column("steps", Kind.INT, lambda a: len(a.step_stats)),
        Column("subsequences", Kind.INT, lambda a: len(a.subsequences)),
    ),
)
"""One row per campaign (``CampaignAnalytics``): identity, totals (null when the API
omits them), rates as fractions, the number of main-sequence steps and of subsequences.
The CLI's CSV columns."""

DAILY_COLUMNS = _table(
    columns_of(DailyStats), _rates(DailyStats, ("open_rate", "click_rate", "bounce_rate"))
)
"""One row per day (``DailyStats``): the date, its counts and rates."""

MAILBOX_COLUMNS = _table(columns_of(Mailbox))
"""One row per mailbox (``Mailbox``); ``warmup_enabled`` and ``warmup_status`` flattened."""

SUMMARY_COLUMNS = _table(columns_of(CampaignSummary, inline=("stats",)))
"""One row per listed campaign (``CampaignSummary`` from ``campaigns.list``/``iter``)."""
