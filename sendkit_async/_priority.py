"""Who goes next when interactive and background calls both wait: a pure decision.

A call's :data:`Priority` is ``"interactive"`` (single calls, the default) or
``"background"`` (the bulk helpers). Where calls queue for the rate limit, a
queued interactive call goes before queued background ones, but background work
is never starved: :class:`Turns` lets background through for at least
:data:`BACKGROUND_SHARE` of the admissions made while both kinds wait.

Controller layer: no I/O, no asyncio, no clock.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["BACKGROUND_SHARE", "Priority", "Turns", "as_priority"]

Priority = Literal["interactive", "background"]
"""How a call queues for the rate limit when others wait: ``"interactive"`` first."""

INTERACTIVE: Priority = "interactive"
BACKGROUND: Priority = "background"

BACKGROUND_SHARE = 0.5
"""Least share of the admissions background calls get while interactive calls also wait."""

_EPS = 1e-9


def as_priority(value: object) -> Priority:
    """``value`` checked as a :data:`Priority`.

    Raises:
        ValueError: anything but ``"interactive"`` or ``"background"``.
    """
    if value == INTERACTIVE:
        return INTERACTIVE
    if value == BACKGROUND:
        return BACKGROUND
    raise ValueError(f"priority must be 'interactive' or 'background', got {value!r}")


def check_share(share: float) -> float:
    """``share`` checked as a background share.

    Raises:
        ValueError: not strictly between 0 and 1.
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"background_share must be > 0 and < 1, got {share!r}")
    return float(share)


class Turns:
    """Picks the next lane to admit from, given which lanes have calls waiting.

    Interactive first, except that background is owed ``share / (1 - share)`` of an
    admission for every interactive one made while background waited, and goes as
    soon as it is owed a whole one. So while both lanes wait, at least ``share`` of
    the admissions are background (1 in 2 for 0.5); with nobody owed, a lone
    interactive call goes next. Background admissions pay the debt down (never
    below zero), so what background is owed never outlives the contention by more
    than one admission.

    Raises:
        ValueError: ``share`` not strictly between 0 and 1.
    """

    __slots__ = ("_owed", "_step", "share")

    def __init__(self, share: float = BACKGROUND_SHARE) -> None:
        self.share = check_share(share)
        self._step = self.share / (1.0 - self.share)
        self._owed = 0.0

    def next(self, interactive: bool, background: bool) -> Priority | None:
        """The lane the next admission comes from (None: nobody waits); records it."""
        if interactive and (not background or self._owed < 1.0 - _EPS):
            if background:
                self._owed += self._step
            return INTERACTIVE
        if background:
            self._owed = max(0.0, self._owed - 1.0)
            return BACKGROUND
        return None

    def __repr__(self) -> str:
        return f"<Turns share={self.share:g} owed={self._owed:.2f}>"
