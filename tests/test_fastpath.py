"""The generated fast path and cattrs' full hooks always agree.

For bodies as documented, with every kind of surprise mixed in (wrong JSON
types, integral floats, booleans for counts, nulls, missing and extra keys),
a converter with the fast path and one without it return equal models or
raise the same problems.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, get_args, get_origin

import attrs
import pytest
from cattrs.errors import ClassValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from sendkit_async import _converter, _fastpath, models
from sendkit_async._converter import make_converter, validation_problems, wire_name
from tests.helpers import FIXTURES

# What a JSON body may hold instead of the documented value.
_SURPRISES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["", "12", "x"]),
    st.just([]),
    st.just({}),
)


def _value(kind: Any) -> st.SearchStrategy[Any]:
    args = get_args(kind)
    if len(args) == 2 and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return st.one_of(st.none(), _value(inner))
    if kind is bool:
        return st.booleans()
    if kind is int:
        return st.one_of(st.integers(0, 10**6), st.sampled_from([3.0, 0.0]))
    if kind is float:
        return st.one_of(st.floats(0, 1, width=32), st.integers(0, 2))
    if kind is str:
        return st.text(max_size=6)
    if kind is dt.date:
        return st.dates().map(dt.date.isoformat)
    if kind is models.Percent:
        return st.sampled_from(["45.0", "0", "n/a"])
    if attrs.has(kind):
        return wire(kind)
    if get_origin(kind) is tuple:
        return st.lists(_value(args[0]), max_size=3)
    if get_origin(kind) in (dict, Mapping):
        return st.dictionaries(st.sampled_from(["active", "bounced", "x"]), st.integers(0, 9))
    raise AssertionError(f"no strategy for {kind!r}")


@st.composite
def _maybe_broken(draw: st.DrawFn, kind: Any) -> Any:
    # Mostly as documented; sometimes anything at all.
    return draw(_SURPRISES) if draw(st.integers(0, 9)) == 0 else draw(_value(kind))


def wire(cls: type[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies of ``cls`` on the wire: each field present or not, sometimes wrong; extra keys."""
    fields = attrs.fields(attrs.resolve_types(cls))

    @st.composite
    def body(draw: st.DrawFn) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in fields:
            required = field.default is attrs.NOTHING
            # Optional keys come and go; required ones are rarely missing.
            if draw(st.integers(0, 19)) if required else draw(st.booleans()):
                out[wire_name(cls, field.name)] = draw(_maybe_broken(field.type))
        if draw(st.integers(0, 9)) == 0:
            out["unexpectedKey"] = 1
        return out

    return body()


def _outcome(conv: Any, data: Any, cls: type[Any]) -> tuple[str, Any]:
    try:
        return "ok", conv.structure(data, cls)
    except Exception as exc:  # the outcome itself is what is compared
        return type(exc).__name__, sorted(validation_problems(exc))


_CLASSES = [
    models.CampaignAnalytics,
    models.Overview,
    models.DailyStats,
    models.Mailbox,
    models.CampaignSummary,
    models.CampaignPage,
]
_CONVERTERS = {
    strict: (make_converter(strict=strict), make_converter(strict=strict, fast=False))
    for strict in (False, True)
}


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("cls", _CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fast_path_agrees_with_cattrs(cls: type[Any], strict: bool, data: st.DataObject) -> None:
    body = data.draw(wire(cls))
    fast, full = _CONVERTERS[strict]
    assert _outcome(fast, body, cls) == _outcome(full, body, cls)


@pytest.mark.parametrize("shape", ["current", "seed"])
def test_fast_path_builds_the_documented_bodies(shape: str) -> None:
    data = json.loads((FIXTURES / f"analytics_campaign_{shape}.json").read_text())["data"]
    fast = _converter.converter().structure(data, models.CampaignAnalytics)
    full = make_converter(fast=False).structure(data, models.CampaignAnalytics)
    assert fast == full
    assert type(fast.status_breakdown) is MappingProxyType  # the field's converter ran
    assert fast.campaign.id == "664a1b2c3d4e5f6a7b8c9d02"
    assert fast.step_stats[0].sent == data["stepStats"][0]["sent"]


def test_surprises_fall_back_to_the_full_check() -> None:
    conv = _converter.converter()
    # An integral float is a count for cattrs' hook; the fast path leaves it to that hook.
    step = conv.structure({"_id": 1, "sent": 3.0}, models.StepStats)
    assert step == models.StepStats(step=1, sent=3)
    assert type(step.sent) is int
    with pytest.raises(ClassValidationError) as info:
        conv.structure({"_id": 1, "sent": "3"}, models.StepStats)
    assert validation_problems(info.value) == [
        "invalid type (expected an integer, got str '3') @ $.sent"
    ]


_MODELS = [cls for cls in vars(models).values() if isinstance(cls, type) and attrs.has(cls)]


@pytest.mark.parametrize("cls", _MODELS, ids=lambda c: c.__name__)
def test_every_model_is_built_by_plain_stores(cls: type[Any]) -> None:
    # A __weakref__ slot (attrs' default) would silently send it down the slow __init__.
    assert _fastpath._draft_of(cls) is not None


def test_a_model_from_the_fast_path_is_a_true_frozen_instance() -> None:
    data = {"_id": 2, "sent": 10, "opened": 4, "clicked": None}
    step = _converter.converter().structure(data, models.StepStats)
    built = models.StepStats(step=2, sent=10, opened=4)
    assert type(step) is models.StepStats
    assert (step, hash(step), repr(step)) == (built, hash(built), repr(built))
    assert step.open_rate == 0.4
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        step.sent = 11  # type: ignore[misc]
    assert attrs.evolve(step, sent=20) == models.StepStats(step=2, sent=20, opened=4)


def _proxy(value: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(value))


@attrs.frozen  # a __weakref__ slot: Python refuses the class swap
class _Weak:
    name: str
    count: int | None = None
    tags: Mapping[str, int] = attrs.field(factory=dict, converter=_proxy)


def test_a_class_python_will_not_swap_is_built_by_its_init() -> None:
    assert _fastpath._draft_of(_Weak) is None
    conv = make_converter()
    hook = conv.get_structure_hook(_Weak)
    assert hook.__qualname__ == "with_fast_path.<locals>.structure"
    built = conv.structure({"name": "a", "count": 2, "tags": {"x": 1}}, _Weak)
    assert built == _Weak("a", 2, {"x": 1})
    assert type(built.tags) is MappingProxyType
    assert conv.structure({"name": "b"}, _Weak) == _Weak("b")
