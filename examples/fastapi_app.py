"""A FastAPI app that serves SendKit campaign analytics from one shared client.

Run it against the bundled simulator (FastAPI and uvicorn: ``pip install
'sendkit-async[web]'``)::

    python -m sendkit_async.simulator --port 8787 &
    SENDKIT_API_KEY=sk_test SENDKIT_BASE_URL=http://127.0.0.1:8787 \\
        uvicorn examples.fastapi_app:app --host 127.0.0.1 --port 8000
    curl http://127.0.0.1:8000/campaigns/<id>

What it shows:

- one :class:`AsyncSendKit` per application, opened and closed by the ``lifespan``, and
  handed to handlers by dependency injection (``SendKit``);
- web deadlines: the handlers' view of the client (``with_options``) bounds how long a page
  view can wait for SendKit, queueing for the rate limit included;
- one exception handler maps SendKit errors to HTTP answers: 404, 503 with ``Retry-After``
  when SendKit is rate limiting us, 504 on a timeout and 502 for any other upstream failure;
- uvicorn and Starlette do not cancel a handler when its client disconnects:
  :func:`unless_disconnected` races the SendKit call with the client's disconnect, so a
  browser that gives up cancels the call (a call still queued for the rate limit leaves the
  queue at once and is never sent).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from sendkit_async import (
    APITimeoutError,
    AsyncSendKit,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    SendKitError,
)

T = TypeVar("T")

logger = logging.getLogger("examples.fastapi_app")

WEB_RETRY = RetryPolicy(max_retries=2, deadline=5.0, max_wait=2.0, max_queue=2.0)
"""A page view waits for SendKit 5 s at most (attempts and retry waits), queues 2 s at most
for the shared rate limit, and never sleeps through a server's ``Retry-After`` over 2 s:
past any of these the call raises (``RateLimitError`` / ``APITimeoutError``) and the
browser gets a 503 or 504 instead of a spinner. Bulk jobs keep the client's own defaults."""

WEB_TIMEOUT = 3.0
"""Seconds for one attempt, body included."""

CLIENT_CLOSED_REQUEST = 499
"""nginx's status for "the client went away first"; nobody receives it, logs show it."""


class ClientDisconnected(Exception):
    """The HTTP client disconnected before its answer was ready."""


async def _disconnect(request: Request) -> None:
    # After the request body, an ASGI server's receive() blocks until the client
    # disconnects (or the response is complete) and then says "http.disconnect".
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, call: Awaitable[T]) -> T:
    """Await ``call``, cancelling it as soon as the HTTP client disconnects.

    Use it around a SendKit call in handlers that do not read a request body (GETs: the
    watch reads the ASGI receive channel).

    Raises:
        ClientDisconnected: the client went away first; ``call`` was cancelled.
        Exception: whatever ``call`` raises.
    """
    work = asyncio.ensure_future(call)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait((work, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this handler is cancelled: neither task outlives it
        work.cancel()
        gone.cancel()
        await asyncio.wait((work, gone))
    if not gone.cancelled():
        gone.exception()  # retrieved: a failed watch is not worth a log line of its own
    if work.cancelled():
        raise ClientDisconnected
    return work.result()


def get_sendkit(request: Request) -> AsyncSendKit:
    """The application's client (a dependency)."""
    client: AsyncSendKit = request.app.state.sendkit
    return client


SendKit = Annotated[AsyncSendKit, Depends(get_sendkit)]


class CampaignSummary(BaseModel):
    id: str
    name: str
    sent: int
    reply_rate: float


class OverviewSummary(BaseModel):
    total_sent: int | None
    campaigns: int | None


def error_response(exc: SendKitError) -> JSONResponse:
    """The HTTP answer for a SendKit failure: the browser's fault or the upstream's."""
    if isinstance(exc, NotFoundError):
        return JSONResponse({"detail": "campaign not found"}, status_code=404)
    if isinstance(exc, InvalidRequestError):
        return JSONResponse({"detail": str(exc)}, status_code=400)
    if isinstance(exc, RateLimitError):
        # Not the browser's 429: our upstream is saturated. Tell it when to come back.
        wait = exc.retry_after if exc.retry_after is not None else 1.0
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        return JSONResponse({"detail": "analytics busy"}, status_code=503, headers=headers)
    if isinstance(exc, APITimeoutError):
        return JSONResponse({"detail": "analytics timed out"}, status_code=504)
    return JSONResponse({"detail": "analytics unavailable"}, status_code=502)


def create_app(**client_options: Any) -> FastAPI:
    """The application; ``client_options`` go to :class:`AsyncSendKit` (default: environment)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncSendKit(**client_options) as client:  # closed on shutdown
            app.state.sendkit = client.with_options(retry=WEB_RETRY, timeout=WEB_TIMEOUT)
            yield

    app = FastAPI(title="campaign analytics", lifespan=lifespan)

    @app.exception_handler(SendKitError)
    async def sendkit_error(request: Request, exc: SendKitError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(ClientDisconnected)
    async def disconnected(request: Request, exc: ClientDisconnected) -> Response:
        logger.info("client went away: cancelled %s %s", request.method, request.url.path)
        return Response(status_code=CLIENT_CLOSED_REQUEST)

    @app.get("/campaigns/{campaign_id}")
    async def campaign_stats(
        campaign_id: str, request: Request, client: SendKit
    ) -> CampaignSummary:
        a = await unless_disconnected(request, client.analytics.campaign(campaign_id))
        return CampaignSummary(
            id=a.campaign.id, name=a.campaign.name, sent=a.sent, reply_rate=a.reply_rate
        )

    @app.get("/overview")
    async def overview(request: Request, client: SendKit) -> OverviewSummary:
        o = await unless_disconnected(request, client.analytics.overview())
        return OverviewSummary(total_sent=o.total_sent, campaigns=o.total_campaigns)

    return app


app = create_app()
"""For ``uvicorn examples.fastapi_app:app``: the client reads ``SENDKIT_*`` at startup."""
