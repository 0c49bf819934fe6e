"""``SimulatorConfig``: every knob of the simulator, validated on construction."""

from __future__ import annotations

import math
import re
from typing import Any

import attrs

from ._limits import HEADER_MODES

SHAPES = ("current", "original")
KEY_RE = re.compile(r"sk_[A-Za-z0-9_-]+\Z")
# Settings that decide the generated data: fixed for the life of a Simulator.
DATA_FIELDS = frozenset({"campaigns", "seed", "shape"})


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def _non_negative(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if _number(attribute.name, value) < 0 or math.isinf(value):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _share(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not 0.0 <= _number(attribute.name, value) <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


MAX_CAMPAIGNS = 1_000_000
"""The largest workspace: ids are made at start (about 1 s and 200 MB per million) and a
fully generated campaign takes a few KB, so a bigger one would only exhaust memory."""


def _campaigns(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CAMPAIGNS:
        raise ValueError(f"campaigns must be an int from 0 to {MAX_CAMPAIGNS:,}, got {value!r}")


def _seed(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"seed must be an int, got {value!r}")


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            raise ValueError(f"{attribute.name} must be one of {', '.join(choices)}; got {value!r}")

    return check


def _rate_limit(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (_number("rate_limit", value) <= 0 or math.isinf(value)):
        raise ValueError(f"rate_limit must be a finite number > 0 or None, got {value!r}")


def _burst(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"burst must be an int >= 1 or None, got {value!r}")


def _api_keys(_: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for key in value:
        if not isinstance(key, str) or not KEY_RE.match(key):
            # Never echo the key itself.
            raise ValueError("api_keys entries must look like sk_<letters, digits, _ or ->")


def _to_keys(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@attrs.frozen(kw_only=True)
class SimulatorConfig:
    """Settings of one simulator; ``attrs.evolve`` (or ``Simulator.update``) to change.

    Raises:
        ValueError: a value is out of range or of the wrong kind.
    """

    campaigns: int = attrs.field(default=2000, validator=_campaigns)
    seed: int = attrs.field(default=0, validator=_seed)
    shape: str = attrs.field(default="current", validator=_one_of(SHAPES))
    api_keys: tuple[str, ...] = attrs.field(default=(), converter=_to_keys, validator=_api_keys)
    rate_limit: float | None = attrs.field(default=None, validator=_rate_limit)
    burst: int | None = attrs.field(default=None, validator=_burst)
    rate_limit_headers: str = attrs.field(default="x-ratelimit", validator=_one_of(HEADER_MODES))
    fault_rate: float = attrs.field(default=0.0, validator=_share)
    fault_retry_after: bool = False
    reset_rate: float = attrs.field(default=0.0, validator=_share)
    latency_ms: float = attrs.field(default=0.0, validator=_non_negative)
    jitter_ms: float = attrs.field(default=0.0, validator=_non_negative)
    slow_body_ms: float = attrs.field(default=0.0, validator=_non_negative)

    @property
    def effective_burst(self) -> int:
        """Bucket size in use: ``burst`` or ``max(1, ceil(rate_limit))``."""
        if self.burst is not None:
            return self.burst
        return max(1, math.ceil(self.rate_limit or 1))

    def __repr__(self) -> str:
        # Keep configured keys out of reprs and logs.
        shown = {f.name: getattr(self, f.name) for f in attrs.fields(SimulatorConfig)}
        shown["api_keys"] = f"<{len(self.api_keys)} keys>"
        return "SimulatorConfig(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"
