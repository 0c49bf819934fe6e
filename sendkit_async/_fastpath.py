"""A fast way from wire JSON to models for bodies that are exactly as documented.

cattrs' generated hooks collect every problem with its path, which a clear
:class:`ResponseValidationError` needs, but cost a dict, a list and a
try-block per object. Most bodies have nothing wrong with them, so each model
gets a second, generated function that checks exact JSON types, builds the
object and gives up (raises) at the first surprise. :func:`with_fast_path`
wraps a cattrs hook: the fast function first, and on any exception the cattrs
hook from the start, which then accepts what it accepts (``3.0`` for an int)
and reports what it rejects with every path. The fast path never decides that
a body is bad; ``tests/test_fastpath.py`` checks that both always agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from types import MemberDescriptorType
from typing import Any, get_args, get_origin

import attrs

__all__ = ["with_fast_path"]

Hook = Callable[[Any, Any], Any]

# Exact JSON types a field may hold; anything else goes to the field's own hook.
_SCALARS = (int, str, bool, float)
_NONE = type(None)
_ABSENT = object()
_FACTORY: type[Any] = type(attrs.Factory(list))
_names = itertools.count()


def with_fast_path(
    cls: type[Any], slow: Hook, hook_for: Callable[[Any], Hook], *, strict: bool
) -> Hook:
    """``slow`` (a cattrs hook for ``cls``) with the generated fast path in front."""
    try:
        fast = _Compiler(hook_for, strict=strict).compile(cls)
    except _Unsupported:
        return slow

    def structure(value: Any, hint: Any) -> Any:
        try:
            return fast(value)
        except Exception:
            return slow(value, hint)  # the full check: accepts or explains

    return structure


class _Unsupported(Exception):
    """A model this compiler does not handle; it keeps the cattrs hook alone."""


class _Compiler:
    """Writes one fast function per model class, nested models included."""

    def __init__(self, hook_for: Callable[[Any], Hook], *, strict: bool) -> None:
        self._hook_for = hook_for
        self._strict = strict
        self._done: dict[type[Any], Callable[[Any], Any]] = {}

    def compile(self, cls: type[Any]) -> Callable[[Any], Any]:
        if cls in self._done:
            return self._done[cls]
        from ._converter import wire_name  # the one place that knows wire names

        namespace: dict[str, Any] = {"_cls": cls, "_dict": dict, "_ABSENT": _ABSENT}
        lines = ["def fast(o):", "    if type(o) is not _dict: raise TypeError"]
        fields = attrs.fields(attrs.resolve_types(cls))
        if self._strict:
            namespace["_known"] = frozenset(wire_name(cls, f.name) for f in fields)
            lines.append("    if not _known.issuperset(o): raise KeyError")
        args = []
        for i, field in enumerate(fields):
            var = f"v{i}"
            lines += self._field(field, var, wire_name(cls, field.name), namespace)
            args.append(var)
        lines += self._build(cls, fields, args, namespace)
        source = "\n".join(lines)
        filename = f"<sendkit_async fast structure {cls.__name__} {next(_names)}>"
        exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own source
        fast: Callable[[Any], Any] = namespace["fast"]
        self._done[cls] = fast
        return fast

    def _build(self, cls: type[Any], fields: Any, args: list[str], ns: dict[str, Any]) -> list[str]:
        """Lines that create the instance from the checked values.

        A frozen attrs ``__init__`` stores each field through a bound
        ``object.__setattr__``; for plain slotted classes, storing through the
        slots' own descriptors is the same thing done faster.
        """
        slots: list[Any] = [getattr(cls, field.name, None) for field in fields]
        plain = (
            not hasattr(cls, "__attrs_pre_init__")
            and not hasattr(cls, "__attrs_post_init__")
            and all(f.init and f.validator is None for f in fields)
            and all(isinstance(slot, MemberDescriptorType) for slot in slots)
        )
        if not plain:
            return [f"    return _cls({', '.join(args)})"]
        ns["_new"] = object.__new__
        lines = ["    self = _new(_cls)"]
        for field, slot, var in zip(fields, slots, args, strict=True):
            ns[f"_set_{var}"] = slot.__set__
            value = var
            if field.converter is not None:
                ns[f"_convert_{var}"] = field.converter
                value = f"_convert_{var}({var})"
            lines.append(f"    _set_{var}(self, {value})")
        return [*lines, "    return self"]

    def _field(
        self, field: attrs.Attribute[Any], var: str, wire: str, ns: dict[str, Any]
    ) -> list[str]:
        args = get_args(field.type)
        optional = len(args) == 2 and _NONE in args
        kind = next(a for a in args if a is not _NONE) if optional else field.type
        check = self._check(kind, var, ns) or []
        if optional and check:
            check = [f"if {var} is not None:", *(f"    {line}" for line in check)]
        default = field.default
        if default is attrs.NOTHING:
            return [f"    {var} = o[{wire!r}]", *(f"    {line}" for line in check)]
        if default is None and optional:  # absent or null: None either way
            return [f"    {var} = o.get({wire!r})", *(f"    {line}" for line in check)]
        if isinstance(default, _FACTORY):
            if default.takes_self:
                raise _Unsupported(f"{field.name}: a factory that takes self")
            ns[f"_factory_{var}"] = default.factory
            fallback = f"_factory_{var}()"
        else:
            ns[f"_default_{var}"] = default
            fallback = f"_default_{var}"
        return [
            f"    {var} = o.get({wire!r}, _ABSENT)",
            f"    if {var} is _ABSENT:",
            f"        {var} = {fallback}",
            *(["    else:", *(f"        {line}" for line in check)] if check else []),
        ]

    def _check(self, kind: Any, var: str, ns: dict[str, Any]) -> list[str] | None:
        """Lines that check (and, for models, build) ``var``; they raise on any surprise."""
        if kind in _SCALARS:
            ns[f"_t_{var}"] = kind
            return [f"if type({var}) is not _t_{var}: raise TypeError"]
        if attrs.has(kind):
            ns[f"_fast_{var}"] = self.compile(kind)
            return [f"{var} = _fast_{var}({var})"]
        origin, args = get_origin(kind), get_args(kind)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis and attrs.has(args[0]):
            ns[f"_fast_{var}"] = self.compile(args[0])
            ns["_list"], ns["_tuple"] = list, tuple
            return [
                f"if type({var}) is not _list: raise TypeError",
                f"{var} = _tuple([_fast_{var}(x) for x in {var}])",
            ]
        if origin in (dict, Mapping) or kind is Mapping:
            key, value = args or (None, None)
            if key is str and value in _SCALARS:
                ns[f"_t_{var}"] = value
                ns["_str"] = str
                return [
                    f"if type({var}) is not _dict: raise TypeError",
                    f"for k, x in {var}.items():",
                    f"    if type(k) is not _str or type(x) is not _t_{var}: raise TypeError",
                ]
        # Anything else (dates, Percent, ...) goes through its own converter hook.
        ns[f"_hook_{var}"], ns[f"_type_{var}"] = self._hook_for(kind), kind
        return [f"{var} = _hook_{var}({var}, _type_{var})"]
