"""The only place that knows wire names: JSON (camelCase, ``_id``) to models and back.

Two converters are built here. The lenient one (the default, what callers
get) ignores unknown keys so additive API changes never break a user; the
strict one forbids them and is used by our own tests and the simulator to
catch drift between the models and the documented bodies. Both reject values
of the wrong type instead of coercing them (``"12"`` is not a count).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.preconf.json import make_converter as _make_json_converter
from cattrs.v import format_exception

from . import models
from ._fastpath import with_fast_path

T = TypeVar("T")

__all__ = [
    "converter",
    "make_converter",
    "strict_converter",
    "structure",
    "unstructure",
    "validation_problems",
]

# Wire names that are not the plain camelCase of the Python name.
_RENAMES: dict[type[Any], dict[str, str]] = {
    models.StepStats: {"step": "_id"},
    models.DailyStats: {"date": "_id"},
    models.Mailbox: {"id": "_id"},
    models.CampaignSummary: {"id": "_id"},
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def wire_name(cls: type[Any], field: str) -> str:
    """The JSON key of ``cls.field``."""
    return _RENAMES.get(cls, {}).get(field) or _camel(field)


def validation_problems(exc: BaseException, path: str = "$") -> list[str]:
    """One line per problem in a cattrs error, each with its WIRE path (``$.stepStats[1]._id``).

    Like ``cattrs.transform_error``, but the path names the JSON keys the API
    sent, not the Python attribute names.
    """
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        lines = [
            line
            for sub, note in with_notes
            for line in validation_problems(sub, f"{path}.{wire_name(exc.cl, note.name)}")
        ]
        return lines + [line for sub in without for line in validation_problems(sub, path)]
    if isinstance(exc, IterableValidationError):
        with_inotes, without = exc.group_exceptions()
        lines = [
            line
            for sub, inote in with_inotes
            for line in validation_problems(sub, f"{path}[{inote.index!r}]")
        ]
        return lines + [line for sub in without for line in validation_problems(sub, path)]
    if isinstance(exc, ForbiddenExtraKeysError):
        return [f"extra fields {sorted(exc.extra_fields)} @ {path}"]
    return [f"{format_exception(exc, None)} @ {path}"]


def _strict_int(value: Any, _: Any) -> int:
    if type(value) is int:  # the common case, first
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected an integer, got {type(value).__name__} {value!r:.40}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected an integer, got {value!r}")
        return int(value)
    return value


def _strict_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {type(value).__name__} {value!r:.40}")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise ValueError("expected a number, got an integer beyond a float's range") from None
    if not math.isfinite(number):  # json.loads reads NaN, Infinity and 1e400
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _strict_str(value: Any, _: Any) -> str:
    if type(value) is str:
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__} {value!r:.40}")
    return value


def _strict_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {type(value).__name__} {value!r:.40}")
    return value


def _optional(hook: Callable[[Any, Any], T], kind: type[T]) -> Callable[[Any, Any], T | None]:
    if kind is float:  # NaN and infinities are floats too: the hook sees every value

        def structure_float(value: Any, hint: Any) -> T | None:
            return None if value is None else hook(value, hint)

        return structure_float

    def structure(value: Any, hint: Any) -> T | None:
        # None and the exact type (the common cases) return at once.
        if value is None or type(value) is kind:
            return value
        return hook(value, hint)

    return structure


def _date(value: Any, _: Any) -> dt.date:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO date string, got {type(value).__name__}")
    return dt.date.fromisoformat(value[:10])


def _percent(value: Any, _: Any) -> models.Percent:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError(f"expected a percent string, got {type(value).__name__}")
    return models.Percent(str(value))


def make_converter(*, strict: bool = False, fast: bool = True) -> cattrs.Converter:
    """Build a private converter (never cattrs' global one).

    ``strict=True`` rejects unknown keys; both variants reject wrong types.
    ``fast=False`` leaves out the fast path (:mod:`._fastpath`), for tests that
    compare the two.
    """
    conv = _make_json_converter(forbid_extra_keys=strict)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(bool, _strict_bool)
    # Optional primitives are most of every body; direct hooks skip cattrs'
    # generic Optional dispatch (a measurable share of a bulk run's CPU).
    for hook, kind in (
        (_strict_int, int),
        (_strict_float, float),
        (_strict_str, str),
        (_strict_bool, bool),
    ):
        conv.register_structure_hook(kind | None, _optional(hook, kind))
    conv.register_structure_hook(dt.date, _date)
    conv.register_unstructure_hook(dt.date, dt.date.isoformat)
    conv.register_structure_hook(models.Percent, _percent)
    conv.register_unstructure_hook(models.Percent, lambda p: p.raw)

    def structure_factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
        renames: dict[str, Any] = {
            f.name: override(rename=wire_name(cls, f.name)) for f in attrs.fields(cls)
        }
        slow = make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=strict, **renames)
        return with_fast_path(cls, slow, conv.get_structure_hook, strict=strict) if fast else slow

    def unstructure_factory(cls: type[Any]) -> Callable[[Any], Any]:
        renames: dict[str, Any] = {
            f.name: override(rename=wire_name(cls, f.name)) for f in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=True, **renames)

    conv.register_structure_hook_factory(attrs.has, structure_factory)
    conv.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    _register_fast_containers(conv)
    return conv


def _model_field_types() -> set[Any]:
    found: set[Any] = set()
    for name in models.__all__:
        cls = getattr(models, name)
        if attrs.has(cls):
            found.update(f.type for f in attrs.fields(attrs.resolve_types(cls)))
    return found


def _register_fast_containers(conv: cattrs.Converter) -> None:
    """Direct hooks for ``tuple[Model, ...]`` and ``Model | None`` fields of our models.

    cattrs' generic tuple and Optional paths dispatch on every call; these go
    straight to the model's hook. A tuple that fails is structured again the
    generic way, so error messages keep their element index.
    """
    for kind in _model_field_types():
        args = get_args(kind)
        if get_origin(kind) is tuple and len(args) == 2 and args[1] is Ellipsis:
            if attrs.has(args[0]):
                _register_exact(conv, kind, _fast_tuple(conv, kind, args[0]))
        elif len(args) == 2 and type(None) in args:
            (inner,) = (a for a in args if a is not type(None))
            if attrs.has(inner):
                _register_exact(conv, kind, _fast_optional(conv, inner))


def _register_exact(conv: cattrs.Converter, kind: Any, hook: Callable[[Any, Any], Any]) -> None:
    conv.register_structure_hook_func(lambda t: t == kind, hook)


def _fast_tuple(conv: cattrs.Converter, kind: Any, item: Any) -> Callable[[Any, Any], Any]:
    # The generic hook is taken before ours is registered; the item's hook is looked up
    # on first use, so that every class hook is generated after all fast hooks exist.
    slow = conv.get_structure_hook(kind)
    hooks: list[Callable[[Any, Any], Any]] = []

    def structure(value: Any, hint: Any) -> Any:
        if type(value) is list:
            if not hooks:
                hooks.append(conv.get_structure_hook(item))
            hook = hooks[0]
            try:
                return tuple([hook(element, item) for element in value])
            except Exception:  # noqa: S110 - structured again below for a precise error
                pass
        return slow(value, hint)

    return structure


def _fast_optional(conv: cattrs.Converter, inner: Any) -> Callable[[Any, Any], Any]:
    hooks: list[Callable[[Any, Any], Any]] = []

    def structure(value: Any, _: Any) -> Any:
        if value is None:
            return None
        if not hooks:
            hooks.append(conv.get_structure_hook(inner))
        return hooks[0](value, inner)

    return structure


@cache
def converter() -> cattrs.Converter:
    """The lenient converter callers get: unknown keys are ignored."""
    return make_converter(strict=False)


@cache
def strict_converter() -> cattrs.Converter:
    """The strict converter for our tests and the simulator: unknown keys are errors."""
    return make_converter(strict=True)


def structure(data: Any, cls: type[T], *, strict: bool = False) -> T:
    """Turn wire JSON into ``cls``; raises cattrs' ClassValidationError on bad data."""
    hook = _hooks.get((cls, strict))
    if hook is None:
        conv = strict_converter() if strict else converter()
        hook = _hooks[cls, strict] = conv.get_structure_hook(cls)
    result: T = hook(data, cls)
    return result


# Each call's class -> its hook, skipping cattrs' dispatch for every response.
_hooks: dict[tuple[Any, bool], Callable[[Any, Any], Any]] = {}


def unstructure(obj: Any) -> Any:
    """Turn a model back into wire JSON (the API's own field names; absent values omitted)."""
    return converter().unstructure(obj)
