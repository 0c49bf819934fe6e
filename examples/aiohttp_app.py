"""An aiohttp app that serves SendKit campaign analytics from one shared client.

Run it against the bundled simulator::

    python -m sendkit_async.simulator --port 8787 &
    SENDKIT_API_KEY=sk_test SENDKIT_BASE_URL=http://127.0.0.1:8787 python examples/aiohttp_app.py
    curl http://127.0.0.1:8080/campaigns/<id>

What it shows:

- one :class:`AsyncSendKit` per application, opened and closed by ``cleanup_ctx``, so every
  handler shares its connection pool and rate-limit budget;
- web deadlines: the handlers' view of the client (``with_options``) bounds how long a page
  view can wait for SendKit, queueing for the rate limit included;
- SendKit errors mapped to HTTP answers in one middleware: 404, 503 with ``Retry-After``
  when SendKit is rate limiting us, 504 on a timeout and 502 for any other upstream failure;
- ``handler_cancellation=True``: since aiohttp 3.9 a handler is NOT cancelled when its
  client disconnects unless this is on. With it, a browser that gives up cancels the
  handler, and the handler's SendKit call with it: a call still queued for the rate limit
  leaves the queue at once and is never sent.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from sendkit_async import (
    APITimeoutError,
    AsyncSendKit,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    SendKitError,
)

SENDKIT = web.AppKey("sendkit", AsyncSendKit)

WEB_RETRY = RetryPolicy(max_retries=2, deadline=5.0, max_wait=2.0, max_queue=2.0)
"""A page view waits for SendKit 5 s at most (attempts and retry waits), queues 2 s at most
for the shared rate limit, and never sleeps through a server's ``Retry-After`` over 2 s:
past any of these the call raises (``RateLimitError`` / ``APITimeoutError``) and the
browser gets a 503 or 504 instead of a spinner. Bulk jobs keep the client's own defaults."""

WEB_TIMEOUT = 3.0
"""Seconds for one attempt, body included."""


def sendkit_context(**client_options: Any) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` that opens the app's client and closes it on shutdown."""

    async def sendkit_client(app: web.Application) -> AsyncIterator[None]:
        async with AsyncSendKit(**client_options) as client:
            app[SENDKIT] = client.with_options(retry=WEB_RETRY, timeout=WEB_TIMEOUT)
            yield

    return sendkit_client


def error_response(exc: SendKitError) -> web.Response:
    """The HTTP answer for a SendKit failure: the browser's fault or the upstream's."""
    if isinstance(exc, NotFoundError):
        return web.json_response({"detail": "campaign not found"}, status=404)
    if isinstance(exc, InvalidRequestError):
        return web.json_response({"detail": str(exc)}, status=400)
    if isinstance(exc, RateLimitError):
        # Not the browser's 429: our upstream is saturated. Tell it when to come back.
        wait = exc.retry_after if exc.retry_after is not None else 1.0
        headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        return web.json_response({"detail": "analytics busy"}, status=503, headers=headers)
    if isinstance(exc, APITimeoutError):
        return web.json_response({"detail": "analytics timed out"}, status=504)
    return web.json_response({"detail": "analytics unavailable"}, status=502)


@web.middleware
async def sendkit_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn any :class:`SendKitError` a handler lets through into its HTTP answer."""
    try:
        return await handler(request)
    except SendKitError as exc:
        return error_response(exc)


async def campaign_stats(request: web.Request) -> web.Response:
    """GET /campaigns/{id}: a few figures of one campaign."""
    client = request.app[SENDKIT]
    a = await client.analytics.campaign(request.match_info["id"])
    return web.json_response(
        {
            "id": a.campaign.id,
            "name": a.campaign.name,
            "sent": a.sent,
            "reply_rate": a.reply_rate,
        }
    )


async def overview(request: web.Request) -> web.Response:
    """GET /overview: workspace totals."""
    o = await request.app[SENDKIT].analytics.overview()
    return web.json_response({"total_sent": o.total_sent, "campaigns": o.total_campaigns})


def make_app(**client_options: Any) -> web.Application:
    """The application; ``client_options`` go to :class:`AsyncSendKit` (default: environment)."""
    app = web.Application(middlewares=[sendkit_errors])
    app.cleanup_ctx.append(sendkit_context(**client_options))
    app.router.add_get("/campaigns/{id}", campaign_stats)
    app.router.add_get("/overview", overview)
    return app


if __name__ == "__main__":
    # handler_cancellation: a browser that goes away cancels its handler and SendKit call.
    web.run_app(make_app(), host="127.0.0.1", port=8080, handler_cancellation=True)
