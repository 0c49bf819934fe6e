"""One bulk run's own request counters, kept next to its client's.

A client's counters are shared by every call, so differences of them count
whatever else ran meanwhile (another bulk run, single calls). A run instead
sends its requests through a copy of the client's :class:`Core` whose
``stats`` counts every change into the run's own :class:`ClientStats` and
into the client's at once; the request pipeline needs no change for it.
"""

from __future__ import annotations

import copy
from typing import Any

import attrs

from ._core import ClientStats, Core

__all__ = ["counting_core"]


def counting_core(core: Core, own: ClientStats) -> Core:
    """A copy of ``core`` (same transport, limiter, sleep) that also counts into ``own``."""
    run = copy.copy(core)
    run.stats = _Both(own, core.stats)
    return run


class _Counter:
    """A counter of :class:`_Both`: reads the run's value, adds each change to both."""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    def __get__(self, both: _Both, owner: type[Any] | None = None) -> int:
        value: int = getattr(both._own, self.name)
        return value

    def __set__(self, both: _Both, value: int) -> None:
        shared = getattr(both._shared, self.name)
        setattr(both._shared, self.name, shared + value - getattr(both._own, self.name))
        setattr(both._own, self.name, value)


class _BothByStatus(dict[int, int]):
    """The run's ``by_status``; each change is added to the client's too."""

    def __init__(self, own: dict[int, int], shared: dict[int, int]) -> None:
        super().__init__(own)
        self._shared = shared

    def __setitem__(self, status: int, value: int) -> None:
        self._shared[status] = self._shared.get(status, 0) + value - self.get(status, 0)
        super().__setitem__(status, value)


class _Both(ClientStats):
    """What the pipeline's ``stats.requests += 1`` (and the like) sees during a run."""

    __slots__ = ("_own", "_shared")

    def __init__(self, own: ClientStats, shared: ClientStats) -> None:  # no super(): a view
        self._own = own
        self._shared = shared
        own.by_status = _BothByStatus(own.by_status, shared.by_status)

    @property
    def by_status(self) -> dict[int, int]:  # type: ignore[override]  # read-only: items change
        return self._own.by_status

    def copy(self) -> ClientStats:
        return self._own.copy()


# Every counter of ClientStats, so that a counter added there is never missing here.
for _field in attrs.fields(ClientStats):
    if _field.name != "by_status":
        _counter = _Counter()
        _counter.__set_name__(_Both, _field.name)
        setattr(_Both, _field.name, _counter)
