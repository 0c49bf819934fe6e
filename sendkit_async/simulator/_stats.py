"""Request counters kept by the simulator's middleware (cheap: dict increments only)."""

from __future__ import annotations

import hashlib
from typing import Any

_HASH_CACHE_MAX = 10_000


class SimulatorStats:
    """Live counters of every non-admin request the simulator received.

    ``by_key`` is keyed by ``key_hash(key)`` (8 hex chars of a SHA-256), never by the key;
    requests without a key count under ``"anonymous"``. ``timeline`` holds
    ``(loop.time(), status)`` for every answered request; reset connections only count in
    ``resets`` (and the totals by key and path).
    """

    __slots__ = (
        "_hashes",
        "by_key",
        "by_path",
        "by_status",
        "in_flight",
        "max_concurrency",
        "requests_total",
        "resets",
        "timeline",
    )

    def __init__(self) -> None:
        self._hashes: dict[str, str] = {}
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Zero every counter; ``in_flight`` stays true (requests still running finish)."""
        self.requests_total = 0
        self.by_status: dict[int, int] = {}
        self.by_key: dict[str, int] = {}
        self.by_path: dict[str, int] = {}
        self.max_concurrency = self.in_flight
        self.resets = 0
        self.timeline: list[tuple[float, int]] = []

    def key_hash(self, key: str | None) -> str:
        """Short, stable, non-reversible label for an API key."""
        if key is None:
            return "anonymous"
        found = self._hashes.get(key)
        if found is None:
            if len(self._hashes) >= _HASH_CACHE_MAX:
                self._hashes.clear()
            found = hashlib.sha256(key.encode()).hexdigest()[:8]
            self._hashes[key] = found
        return found

    def begin(self) -> None:
        self.requests_total += 1
        self.in_flight += 1
        if self.in_flight > self.max_concurrency:
            self.max_concurrency = self.in_flight

    def end(self, now: float, status: int | None, key_label: str, path: str) -> None:
        """Record a finished request; ``status`` None means the connection was reset."""
        self.in_flight -= 1
        self.by_key[key_label] = self.by_key.get(key_label, 0) + 1
        self.by_path[path] = self.by_path.get(path, 0) + 1
        if status is None:
            self.resets += 1
        else:
            self.by_status[status] = self.by_status.get(status, 0) + 1
            self.timeline.append((now, status))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready snapshot (status codes become string keys; no timeline)."""
        return {
            "requests_total": self.requests_total,
            "in_flight": self.in_flight,
            "max_concurrency": self.max_concurrency,
            "resets": self.resets,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_key": dict(self.by_key),
            "by_path": dict(self.by_path),
            "timeline_length": len(self.timeline),
        }

    def __repr__(self) -> str:
        return (
            f"<SimulatorStats total={self.requests_total} in_flight={self.in_flight} "
            f"max_concurrency={self.max_concurrency} by_status={self.by_status} "
            f"resets={self.resets}>"
        )
