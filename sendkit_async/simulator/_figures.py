"""A sequence's figures, and the nested cumulative floors that spread them over days.

A campaign sends during ``days`` consecutive local days. After ``k`` of ``D`` days a step
has sent ``S(k) = sent*k // D``, opened ``O(k) = opened*S(k) // sent``, clicked
``C(k) = clicked*O(k) // opened`` and so on. Each level is a 1-Lipschitz function of the
level above, so a range ``[a, b)`` (``X(b) - X(a)``) keeps every inequality the generated
totals hold (opened <= sent, clicked <= opened, bounced <= sent, replied <= sent,
positive <= replied), daily rows sum exactly to the ranged figures, and the whole window
gives the all-time totals. ``_data`` generates the figures; ``_render`` turns them into JSON.
"""

from __future__ import annotations

import operator

import attrs


@attrs.frozen
class Step:
    """Figures of one sequence step."""

    sent: int
    opened: int
    clicked: int
    bounced: int


@attrs.frozen
class Sequence:
    """A main sequence or subsequence: its steps plus the replies it drew."""

    steps: tuple[Step, ...]
    replied: int
    positive_replied: int

    @property
    def sent(self) -> int:
        return sum(s.sent for s in self.steps)

    def totals(self) -> Step:
        return Step(
            sum(s.sent for s in self.steps),
            sum(s.opened for s in self.steps),
            sum(s.clicked for s in self.steps),
            sum(s.bounced for s in self.steps),
        )

    def cumulative(self, k: int, days: int) -> tuple[tuple[Step, ...], int, int]:
        """Return (steps, replied, positive) sent by the end of local day ``k`` (0..days)."""
        if k >= days:
            return self.steps, self.replied, self.positive_replied
        if k <= 0:
            return tuple(Step(0, 0, 0, 0) for _ in self.steps), 0, 0
        steps = []
        sent_now = 0
        for st in self.steps:
            s = st.sent * k // days
            o = st.opened * s // st.sent if st.sent else 0
            c = st.clicked * o // st.opened if st.opened else 0
            b = st.bounced * s // st.sent if st.sent else 0
            steps.append(Step(s, o, c, b))
            sent_now += s
        total = self.sent
        r = self.replied * sent_now // total if total else 0
        p = self.positive_replied * r // self.replied if self.replied else 0
        return tuple(steps), r, p

    def window(self, a: int, b: int, days: int) -> Sequence:
        """Figures sent during local days ``[a, b)``."""
        if a <= 0 and b >= days:
            return self
        hi_steps, hi_r, hi_p = self.cumulative(b, days)
        lo_steps, lo_r, lo_p = self.cumulative(a, days)
        steps = tuple(
            Step(
                h.sent - lo.sent,
                h.opened - lo.opened,
                h.clicked - lo.clicked,
                h.bounced - lo.bounced,
            )
            for h, lo in zip(hi_steps, lo_steps, strict=True)
        )
        return Sequence(steps, hi_r - lo_r, hi_p - lo_p)

    def daily_columns(self, days: int) -> list[list[int]]:
        """Six per-day columns (sent, opened, clicked, bounced, replied, positive).

        Same nested floors as ``cumulative``, computed column-wise for speed.
        """
        if days <= 0:
            return [[] for _ in range(6)]
        ks = range(days + 1)
        zeros = [0] * (days + 1)
        cum = [zeros, zeros, zeros, zeros]
        for st in self.steps:
            s_col = [st.sent * k // days for k in ks]
            o_col = [st.opened * x // st.sent for x in s_col] if st.sent else zeros
            c_col = [st.clicked * x // st.opened for x in o_col] if st.opened else zeros
            b_col = [st.bounced * x // st.sent for x in s_col] if st.sent else zeros
            cum = [
                list(map(operator.add, a, b))
                for a, b in zip(cum, (s_col, o_col, c_col, b_col), strict=True)
            ]
        total = self.sent
        r_col = [self.replied * x // total for x in cum[0]] if total else zeros
        p_col = (
            [self.positive_replied * x // self.replied for x in r_col] if self.replied else zeros
        )
        return [list(map(operator.sub, col[1:], col[:-1])) for col in (*cum, r_col, p_col)]
