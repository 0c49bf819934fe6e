"""Where a chunk's results go: a callback, JSON Lines files, or Parquet files.

Every sink receives one :class:`ChunkOutput` per chunk, with exactly one row per id
(a result or a recorded failure). A chunk may be written more than once (a worker
that crashed after writing, a lease that ran out): every sink here replaces a
chunk's earlier output instead of adding to it, so each id ends in the run once.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from ..errors import ConfigurationError, SendKitError
from ..models import CampaignAnalytics
from ..wire import JSON, to_wire

__all__ = [
    "CallbackSink",
    "ChunkOutput",
    "JsonLinesSink",
    "ParquetSink",
    "Row",
    "Sink",
    "read_jsonl_run",
]


@attrs.frozen
class Row:
    """One id's outcome: ``analytics``, or the failure's ``error`` type name and message."""

    id: str
    analytics: CampaignAnalytics | None = None
    error: str | None = None
    message: str | None = None
    status: int | None = None  # the HTTP status of an API error, when there was one

    @classmethod
    def failed(cls, id: str, error: SendKitError) -> Row:
        """The row of an id that failed with ``error`` (its text never holds a key)."""
        return cls(id, error=type(error).__name__, message=str(error),
                   status=getattr(error, "status", None))  # fmt: skip

    @property
    def ok(self) -> bool:
        """True for a result."""
        return self.error is None

    @functools.cached_property
    def _wire(self) -> dict[str, JSON] | None:
        # computed once per row: the progress hash and the sink both need it
        return None if self.analytics is None else to_wire(self.analytics)


@attrs.frozen
class ChunkOutput:
    """Every row of one chunk of a run: one per id, in the chunk's order."""

    run_id: str
    key_ref: str
    chunk: int
    rows: tuple[Row, ...]

    @property
    def succeeded(self) -> int:
        """Rows with a result."""
        return sum(row.ok for row in self.rows)

    @property
    def failed(self) -> int:
        """Rows with a recorded failure."""
        return len(self.rows) - self.succeeded

    def records(self) -> list[dict[str, JSON]]:
        """The rows as JSON-ready dicts (analytics in the API's own field names)."""
        return [
            {
                "run_id": self.run_id,
                "key_ref": self.key_ref,
                "chunk": self.chunk,
                "id": row.id,
                "ok": row.ok,
                "analytics": row._wire,
                "error": None
                if row.ok
                else {"type": row.error, "message": row.message, "status": row.status},
            }
            for row in self.rows
        ]


@runtime_checkable
class Sink(Protocol):
    """Receives each finished chunk; must replace an earlier write of the same chunk."""

    async def write(self, output: ChunkOutput) -> None: ...


class CallbackSink:
    """Calls ``callback(output)`` (a function or coroutine function) per finished chunk.

    The callback may see a chunk twice (after a worker crash between the call and
    arq marking the job done): key what it stores by ``(run_id, key_ref, chunk)``
    and replace, so the run still holds every id once.
    """

    __slots__ = ("_callback",)

    def __init__(self, callback: Callable[[ChunkOutput], Awaitable[object] | object]) -> None:
        self._callback = callback

    async def write(self, output: ChunkOutput) -> None:
        """Hand ``output`` to the callback."""
        result = self._callback(output)
        if inspect.isawaitable(result):
            await result


def _chunk_path(directory: Path, output: ChunkOutput, suffix: str) -> Path:
    return directory / output.run_id / output.key_ref / f"chunk-{output.chunk:06d}{suffix}"


def _replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write a temporary file next to ``path``, flush it to disk, rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, "utf-8")


class JsonLinesSink:
    """One JSON Lines file per chunk: ``DIR/<run_id>/<key_ref>/chunk-000000.jsonl``.

    Each file is written to a temporary name and renamed into place, so a reader
    never sees half a chunk and a chunk written again replaces its file. Lines
    are :meth:`ChunkOutput.records`; :func:`read_jsonl_run` reads a run back.
    """

    __slots__ = ("directory",)

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    async def write(self, output: ChunkOutput) -> None:
        """Write ``output``'s file (in a thread: the event loop keeps serving).

        Raises:
            OSError: the file could not be written (the chunk is retried).
        """
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in output.records())
        path = _chunk_path(self.directory, output, ".jsonl")
        await asyncio.to_thread(_replace_atomically, path, lambda p: _write_text(p, text))

    def __repr__(self) -> str:
        return f"JsonLinesSink({str(self.directory)!r})"


def read_jsonl_run(directory: str | os.PathLike[str], run_id: str) -> Iterator[dict[str, Any]]:
    """Every row a :class:`JsonLinesSink` wrote for ``run_id``, chunk by chunk."""
    for path in sorted((Path(directory) / run_id).glob("*/chunk-*.jsonl")):
        with path.open(encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)


PARQUET_COLUMNS = ("run_id", "key_ref", "chunk", "id", "ok", "error", "message", "status",
                   "name", "campaign_status", "sent", "delivered", "opened", "clicked",
                   "bounced", "replied", "unsubscribed", "analytics")  # fmt: skip


class ParquetSink:
    """One Parquet file per chunk (``DIR/<run_id>/<key_ref>/chunk-000000.parquet``).

    Needs pyarrow (imported when the sink is made). Columns: identity, ``ok``,
    the failure (``error``, ``message``, ``status``), the campaign's name, status and
    totals, and ``analytics``: the whole result as the API's JSON text. Files are
    written and renamed into place like :class:`JsonLinesSink`'s, so
    ``pyarrow.parquet.read_table(DIR / run_id)`` reads the run, each id once.

    Raises:
        ConfigurationError: pyarrow is not installed.
    """

    __slots__ = ("_pa", "_pq", "directory")

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        try:  # pyarrow has no type information: Any, also for users' own mypy runs
            pa: Any = importlib.import_module("pyarrow")
            pq: Any = importlib.import_module("pyarrow.parquet")
        except ImportError:
            raise ConfigurationError(
                "ParquetSink needs pyarrow: pip install 'sendkit-async[arrow]'"
            ) from None
        self._pa, self._pq = pa, pq
        self.directory = Path(directory)

    def _table(self, output: ChunkOutput) -> Any:
        columns: dict[str, list[Any]] = {name: [] for name in PARQUET_COLUMNS}
        for row in output.rows:
            a = row.analytics
            stats = a.stats if a is not None else None
            values = {
                "run_id": output.run_id,
                "key_ref": output.key_ref,
                "chunk": output.chunk,
                "id": row.id,
                "ok": row.ok,
                "error": row.error,
                "message": row.message,
                "status": row.status,
                "name": a.campaign.name if a is not None else None,
                "campaign_status": a.campaign.status if a is not None else None,
                "analytics": None if a is None else json.dumps(row._wire),
            }
            for name in ("sent", "delivered", "opened", "clicked", "bounced", "replied",
                         "unsubscribed"):  # fmt: skip
                values[name] = getattr(stats, name) if stats is not None else None
            for name in PARQUET_COLUMNS:
                columns[name].append(values[name])
        pa = self._pa
        ints = {"chunk", "status", "sent", "delivered", "opened", "clicked", "bounced",
                "replied", "unsubscribed"}  # fmt: skip
        schema = pa.schema(
            [
                (name, pa.int64() if name in ints else pa.bool_() if name == "ok" else pa.string())
                for name in PARQUET_COLUMNS
            ]
        )
        return pa.table(columns, schema=schema)

    async def write(self, output: ChunkOutput) -> None:
        """Write ``output``'s file (in a thread).

        Raises:
            OSError: the file could not be written (the chunk is retried).
        """
        table = self._table(output)
        path = _chunk_path(self.directory, output, ".parquet")
        await asyncio.to_thread(_replace_atomically, path, lambda p: self._pq.write_table(table, p))

    def __repr__(self) -> str:
        return f"ParquetSink({str(self.directory)!r})"
