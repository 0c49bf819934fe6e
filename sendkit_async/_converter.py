"""The only place that knows wire names: JSON (camelCase, ``_id``) to models and back.

Two converters are built here. The lenient one (the default, what callers
get) ignores unknown keys so additive API changes never break a user; the
strict one forbids them and is used by our own tests and the simulator to
catch drift between the models and the documented bodies. Both reject values
of the wrong type instead of coercing them (``"12"`` is not a count).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.preconf.json import make_converter as _make_json_converter

from . import models

T = TypeVar("T")

__all__ = ["converter", "make_converter", "strict_converter", "structure", "unstructure"]

# Wire names that are not the plain camelCase of the Python name.
_RENAMES: dict[type[Any], dict[str, str]] = {
    models.StepStats: {"step": "_id"},
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def wire_name(cls: type[Any], field: str) -> str:
    """The JSON key of ``cls.field``."""
    return _RENAMES.get(cls, {}).get(field) or _camel(field)


def _all_renames() -> dict[str, str]:
    names = {}
    for cls_renames in _RENAMES.values():
        names.update(cls_renames)
    return names


_FIELD_IN_PATH = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)")


def wire_path(path: str) -> str:
    """Rewrite a cattrs error path (``$.step_stats[1].opened``) with wire names."""
    renames = _all_renames()
    return _FIELD_IN_PATH.sub(lambda m: "." + (renames.get(m[1]) or _camel(m[1])), path)


def _strict_int(value: Any, _: Any) -> int:
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
    return float(value)


def _strict_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__} {value!r:.40}")
    return value


def _strict_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {type(value).__name__} {value!r:.40}")
    return value


def _date(value: Any, _: Any) -> dt.date:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO date string, got {type(value).__name__}")
    return dt.date.fromisoformat(value[:10])


def make_converter(*, strict: bool = False) -> cattrs.Converter:
    """Build a private converter (never cattrs' global one).

    ``strict=True`` rejects unknown keys; both variants reject wrong types.
    """
    conv = _make_json_converter(forbid_extra_keys=strict)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(dt.date, _date)
    conv.register_unstructure_hook(dt.date, dt.date.isoformat)

    def structure_factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
        renames: dict[str, Any] = {
            f.name: override(rename=wire_name(cls, f.name)) for f in attrs.fields(cls)
        }
        return make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=strict, **renames)

    def unstructure_factory(cls: type[Any]) -> Callable[[Any], Any]:
        renames: dict[str, Any] = {
            f.name: override(rename=wire_name(cls, f.name)) for f in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=True, **renames)

    conv.register_structure_hook_factory(attrs.has, structure_factory)
    conv.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    return conv


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
    conv = strict_converter() if strict else converter()
    return conv.structure(data, cls)


def unstructure(obj: Any) -> Any:
    """Turn a model back into wire JSON (the API's own field names; absent values omitted)."""
    return converter().unstructure(obj)
