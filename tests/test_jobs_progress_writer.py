"""One progress writer per worker: every running chunk's answers gathered for a moment and
written in one transaction, one value per chunk (a transaction per answer cost more CPU
than the request)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("arq")

from sendkit_async import NotFoundError
from sendkit_async.jobs import Row
from sendkit_async.jobs._progress import (
    PARTIAL_TTL,
    WRITE_EVERY,
    ChunkProgress,
    ProgressWriter,
    load_rows,
)
from tests.jobs_helpers import running

GUARD = 60.0  # seconds before a wait that must end fails the test (never an outcome)


def row(item: str) -> Row:
    return Row.failed(item, NotFoundError("gone", status=404))


class Pause:
    """The writer's pause between writes, ended by the test."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.entered = asyncio.Event()
        self._go = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.entered.set()
        await self._go.wait()
        self._go.clear()
        self.entered.clear()

    def end(self) -> None:
        self._go.set()


class RecordingRedis:
    """Records each transaction's commands; fails the next ``fail`` ones."""

    def __init__(self) -> None:
        self.transactions: list[list[tuple[Any, ...]]] = []
        self.wrote = asyncio.Event()
        self.fail = 0
        self._commands: list[tuple[Any, ...]] = []

    def pipeline(self, transaction: bool = True) -> RecordingRedis:
        assert transaction
        self._commands = []
        return self

    async def __aenter__(self) -> RecordingRedis:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def rpush(self, key: str, value: bytes) -> None:
        self._commands.append(("rpush", key, load_rows(value, "abcd")))

    def expire(self, key: str, seconds: int) -> None:
        self._commands.append(("expire", key, seconds))

    async def execute(self) -> list[bool]:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("Redis went away")
        self.transactions.append(self._commands)
        self.wrote.set()
        return [True] * len(self._commands)


async def test_every_running_chunks_answers_go_in_one_transaction_after_the_pause() -> None:
    redis, pause = RecordingRedis(), Pause()
    async with (
        running(ProgressWriter(redis, sleep=pause.sleep)) as writer,  # type: ignore[arg-type]
        ChunkProgress(writer, "k1") as one,
        ChunkProgress(writer, "k2") as two,
    ):
        one.add(row("a"))
        await asyncio.wait_for(pause.entered.wait(), GUARD)  # woken by the first answer
        two.add(row("b"))
        one.add(row("c"))
        assert redis.transactions == []  # nothing written during the pause
        pause.end()
        await asyncio.wait_for(redis.wrote.wait(), GUARD)
    assert pause.asked == [WRITE_EVERY]
    assert redis.transactions == [
        [
            ("rpush", "k1", {"a": row("a"), "c": row("c")}),
            ("expire", "k1", PARTIAL_TTL),
            ("rpush", "k2", {"b": row("b")}),
            ("expire", "k2", PARTIAL_TTL),
        ]
    ]


async def test_flush_writes_one_chunk_at_once_and_an_ended_chunks_rows_are_dropped() -> None:
    redis, pause = RecordingRedis(), Pause()
    async with (
        running(ProgressWriter(redis, sleep=pause.sleep)) as writer,  # type: ignore[arg-type]
        ChunkProgress(writer, "k2") as two,
    ):
        async with ChunkProgress(writer, "k1") as one:
            one.add(row("a"))
            two.add(row("b"))
            await one.flush()  # a chunk given back: no pause, its rows only
            assert redis.transactions == [
                [("rpush", "k1", {"a": row("a")}), ("expire", "k1", PARTIAL_TTL)]
            ]
            one.add(row("c"))
        one.add(row("d"))  # after its end: ignored
        await asyncio.wait_for(pause.entered.wait(), GUARD)
        pause.end()
        await asyncio.wait_for(_writes(redis, 2), GUARD)
    assert redis.transactions[1] == [
        ("rpush", "k2", {"b": row("b")}),
        ("expire", "k2", PARTIAL_TTL),
    ]


async def _writes(redis: RecordingRedis, count: int) -> None:
    while len(redis.transactions) < count:
        redis.wrote.clear()
        await redis.wrote.wait()


async def test_a_failed_write_keeps_the_rows_of_running_chunks_for_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis = RecordingRedis()
    redis.fail = 1
    async with (
        running(ProgressWriter(redis, every=0)) as writer,  # type: ignore[arg-type]
        ChunkProgress(writer, "k1") as one,
    ):
        async with ChunkProgress(writer, "k2") as two:
            one.add(row("a"))
            two.add(row("b"))

            async def failed() -> None:
                while redis.fail:
                    await asyncio.sleep(0)

            await asyncio.wait_for(failed(), GUARD)  # the writer's try, both chunks
        one.add(row("c"))  # k2 has ended meanwhile
        await one.flush()
    assert redis.transactions == [
        [("rpush", "k1", {"a": row("a"), "c": row("c")}), ("expire", "k1", PARTIAL_TTL)]
    ]
    assert "partial rows of 2 chunk(s) not recorded (ConnectionError), e.g. k1" in caplog.text
