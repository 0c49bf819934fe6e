"""Seeded fault injection: 5xx answers, connection resets, latency, slow bodies."""

from __future__ import annotations

import asyncio
import random
from http import HTTPStatus
from typing import TYPE_CHECKING

from aiohttp import web
from multidict import CIMultiDict

from ._render import error_body

if TYPE_CHECKING:
    pass

FAULT_STATUSES = (500, 502, 503)
RESET = "reset"
_SLOW_CHUNKS = 8


class FaultInjector:
    """Draws faults from ``random.Random(seed)`` so a run is reproducible.

    Faults and resets use one stream; latency jitter uses a second one, so turning jitter
    on or off does not change which requests fail.
    """

    __slots__ = ("_jitter_rng", "_rng")

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - reproducible fault draws
        self._jitter_rng = random.Random(f"jitter:{seed}")  # noqa: S311

    def delay(self, latency_ms: float, jitter_ms: float) -> float:
        """Seconds to wait before answering."""
        extra = self._jitter_rng.uniform(0.0, jitter_ms) if jitter_ms > 0 else 0.0
        return (latency_ms + extra) / 1000.0

    def draw(self, fault_rate: float, reset_rate: float) -> str | tuple[int, bool] | None:
        """``RESET``, ``(status, html)`` for a 5xx answer, or None for a normal answer."""
        rng = self._rng
        if reset_rate > 0 and rng.random() < reset_rate:
            return RESET
        if fault_rate > 0 and rng.random() < fault_rate:
            return rng.choice(FAULT_STATUSES), rng.random() < 0.5
        return None


def fault_response(status: int, html: bool, retry_after: bool) -> web.Response:
    reason = HTTPStatus(status).phrase
    headers = {"Retry-After": "1"} if retry_after and status == 503 else None
    if html:
        text = f"<html><body><h1>{status} {reason}</h1></body></html>"
        return web.Response(status=status, text=text, content_type="text/html", headers=headers)
    body = error_body(status, reason, "The server encountered a temporary error")
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def reset_connection(request: web.Request) -> web.Response:
    """Abort the connection; the returned response is never written.

    aiohttp then fails to write the response with a ``ConnectionError``, which it treats
    as a client disconnect (debug log only), so no traceback reaches the logs.
    """
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=200)


async def write_slowly(
    request: web.Request, response: web.Response, total_ms: float
) -> web.StreamResponse:
    """Send ``response``'s body in chunks spread over ``total_ms`` milliseconds."""
    body = response.body
    data = body if isinstance(body, bytes) else b""
    out = web.StreamResponse(
        status=response.status, reason=response.reason, headers=CIMultiDict(response.headers)
    )
    out.content_length = len(data)
    chunks = max(1, min(_SLOW_CHUNKS, len(data)))
    size = -(-len(data) // chunks) if data else 0
    pause = total_ms / 1000.0 / max(1, chunks - 1)
    try:
        await out.prepare(request)
        for i, start in enumerate(range(0, len(data), max(1, size))):
            if i:
                await asyncio.sleep(pause)
            await out.write(data[start : start + size])
    except ConnectionError:
        pass  # the client went away mid-body: nothing left to do
    return out
