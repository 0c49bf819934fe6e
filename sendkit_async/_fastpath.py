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
import math
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
    """Writes one fast function per model class, with every nested model inlined."""

    def __init__(self, hook_for: Callable[[Any], Hook], *, strict: bool) -> None:
        self._hook_for = hook_for
        self._strict = strict
        self._names = itertools.count()
        self._stack: list[type[Any]] = []
        self._ns: dict[str, Any] = {
            "_ABSENT": _ABSENT,
            "_dict": dict,
            "_finite": math.isfinite,
            "_list": list,
            "_new": object.__new__,
            "_str": str,
            "_tuple": tuple,
        }

    def compile(self, cls: type[Any]) -> Callable[[Any], Any]:
        out = self._var()
        body = self._emit(cls, "o", out)
        source = "\n".join(["def fast(o):", *(f"    {line}" for line in body), f"    return {out}"])
        filename = f"<sendkit_async fast structure {cls.__name__} {next(_names)}>"
        exec(compile(source, filename, "exec"), self._ns)  # noqa: S102 - our own source
        fast: Callable[[Any], Any] = self._ns["fast"]
        return fast

    def _var(self) -> str:
        return f"v{next(self._names)}"

    def _const(self, value: Any) -> str:
        """A name for ``value`` in the generated function's globals."""
        name = f"_c{next(self._names)}"
        self._ns[name] = value
        return name

    def _emit(self, cls: type[Any], src: str, out: str) -> list[str]:
        """Lines that check the body in ``src`` and bind the built ``cls`` to ``out``."""
        from ._converter import wire_name  # the one place that knows wire names

        if cls in self._stack:
            raise _Unsupported(f"{cls.__name__} contains itself")
        self._stack.append(cls)
        fields = attrs.fields(attrs.resolve_types(cls))
        lines = [f"if type({src}) is not _dict: raise TypeError"]
        if self._strict:
            known = self._const(frozenset(wire_name(cls, f.name) for f in fields))
            lines.append(f"if not {known}.issuperset({src}): raise KeyError")
        values = []
        for field in fields:
            var = self._var()
            lines += self._field(field, src, var, wire_name(cls, field.name))
            values.append(var)
        self._stack.pop()
        return lines + self._build(cls, fields, values, out)

    def _build(self, cls: type[Any], fields: Any, values: list[str], out: str) -> list[str]:
        """Lines that create the instance from the checked values.

        A frozen attrs ``__init__`` stores each field through a bound
        ``object.__setattr__``, slow next to a plain attribute store. So for
        a plain class, the fields are stored into a "draft": an unfrozen class
        of the very same layout, which then becomes ``cls`` by ``__class__``
        assignment, as Python allows between two such classes. Any other class
        is built by its own ``__init__``.
        """
        plain = (
            not hasattr(cls, "__attrs_pre_init__")
            and not hasattr(cls, "__attrs_post_init__")
            and all(f.init and f.validator is None for f in fields)
            and all(isinstance(getattr(cls, f.name, None), MemberDescriptorType) for f in fields)
        )
        draft = _draft_of(cls) if plain else None
        if draft is None:
            if not all(f.init for f in fields):
                raise _Unsupported(f"{cls.__name__}: a field outside __init__")
            args = ", ".join(f"{f.alias}={var}" for f, var in zip(fields, values, strict=True))
            return [f"{out} = {self._const(cls)}({args})"]
        lines = [f"{out} = _new({self._const(draft)})"]
        for field, var in zip(fields, values, strict=True):
            value = var if field.converter is None else f"{self._const(field.converter)}({var})"
            lines.append(f"{out}.{field.name} = {value}")
        return [*lines, f"{out}.__class__ = {self._const(cls)}"]

    def _field(self, field: attrs.Attribute[Any], src: str, var: str, wire: str) -> list[str]:
        args = get_args(field.type)
        optional = len(args) == 2 and _NONE in args
        kind = next(a for a in args if a is not _NONE) if optional else field.type
        check = self._check(kind, var)
        if optional and check:
            check = [f"if {var} is not None:", *(f"    {line}" for line in check)]
        default = field.default
        if default is attrs.NOTHING:
            return [f"{var} = {src}[{wire!r}]", *check]
        if default is None and optional:  # absent or null: None either way
            return [f"{var} = {src}.get({wire!r})", *check]
        if isinstance(default, _FACTORY):
            if default.takes_self:
                raise _Unsupported(f"{field.name}: a factory that takes self")
            fallback = f"{self._const(default.factory)}()"
        else:
            fallback = self._const(default)
        return [
            f"{var} = {src}.get({wire!r}, _ABSENT)",
            f"if {var} is _ABSENT:",
            f"    {var} = {fallback}",
            *(["else:", *(f"    {line}" for line in check)] if check else []),
        ]

    def _check(self, kind: Any, var: str) -> list[str]:
        """Lines that check (and, for models, build) ``var``; they raise on any surprise."""
        if kind is float:  # NaN and infinities are floats the converter refuses
            return [
                f"if type({var}) is not {self._const(kind)} or not _finite({var}): raise TypeError"
            ]
        if kind in _SCALARS:
            return [f"if type({var}) is not {self._const(kind)}: raise TypeError"]
        if attrs.has(kind):
            return self._emit(kind, var, var)
        origin, args = get_origin(kind), get_args(kind)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis and attrs.has(args[0]):
            items, item = self._var(), self._var()
            return [
                f"if type({var}) is not _list: raise TypeError",
                f"{items} = []",
                f"for {item} in {var}:",
                *(f"    {line}" for line in self._emit(args[0], item, item)),
                f"    {items}.append({item})",
                f"{var} = _tuple({items})",
            ]
        if origin in (dict, Mapping) or kind is Mapping:
            key, value = args or (None, None)
            if key is str and value in _SCALARS and value is not float:
                return [
                    f"if type({var}) is not _dict: raise TypeError",
                    f"for k, x in {var}.items():",
                    f"    if type(k) is not _str or type(x) is not {self._const(value)}:",
                    "        raise TypeError",
                ]
        # Anything else (dates, Percent, ...) goes through its own converter hook.
        hook, hint = self._const(self._hook_for(kind)), self._const(kind)
        return [f"{var} = {hook}({var}, {hint})"]


def _draft_of(cls: type[Any]) -> type[Any] | None:
    """An unfrozen class with the layout of ``cls``, or None if Python would not swap them.

    Python refuses the swap for a class with a ``__weakref__`` slot: the models
    have none (``weakref_slot=False``).
    """
    own = cls.__dict__.get("__slots__")
    if not isinstance(own, tuple) or "__dict__" in own:
        return None
    draft = type(f"{cls.__name__}Draft", cls.__bases__, {"__slots__": own, "__module__": __name__})
    if any("__setattr__" in vars(base) for base in draft.__mro__[:-1]):
        return None  # a base's own __setattr__ would make the stores slow, or refuse them
    probe: Any = object.__new__(draft)
    try:
        probe.__class__ = cls
    except TypeError:  # "object layout differs"
        return None
    return draft
