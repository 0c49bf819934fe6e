"""Closing a :class:`~._sync.SendKit`: on its own loop, bounded, or by its finaliser.

:func:`shutdown` closes the async client and releases the response caches on the
client's :class:`~._portal.Portal` (each step waits at most :data:`~._portal.CLOSE_WAIT`),
then stops the portal's thread. :func:`forgotten` is the ``weakref.finalize`` callback
of a client never closed: it warns (``ResourceWarning``, pointing where the client was
made) and shuts it down, at collection or at interpreter exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import warnings

from ._client import AsyncSendKit
from ._portal import CLOSE_WAIT, Portal
from .cache import ResponseCache
from .errors import ClientClosedError

__all__ = ["forgotten", "shutdown"]

logger = logging.getLogger("sendkit_async")


def shutdown(portal: Portal, client: AsyncSendKit, caches: list[ResponseCache]) -> None:
    """Close ``client`` and release ``caches`` on ``portal`` (bounded), then stop the portal."""
    if threading.get_ident() == portal.thread_id:  # collected in its own thread: no waiting
        portal.stop(wait=False)
    elif portal.alive:
        with contextlib.suppress(ClientClosedError, TimeoutError, asyncio.TimeoutError):
            portal.run(asyncio.wait_for(_close(client, caches), CLOSE_WAIT))
    portal.stop()


async def _close(client: AsyncSendKit, caches: list[ResponseCache]) -> None:
    """Close ``client``, then release each cache; a cache's failure is logged, not raised."""
    await client.aclose()
    for cache in caches:  # their connections on this loop would outlive it, unusable
        try:
            await cache.release()
        except Exception as exc:  # a user's cache: its failure must not fail the close
            logger.warning("response cache failed to release (%s)", type(exc).__name__)


def forgotten(
    portal: Portal,
    client: AsyncSendKit,
    caches: list[ResponseCache],
    origin: tuple[str, int],
) -> None:
    """The finalizer of a client never closed (collected, or alive at exit)."""
    if not portal.alive:
        return
    warnings.warn_explicit(
        f"unclosed SendKit client of {client.base_url} (created here): "
        "use 'with SendKit() as client:' or call client.close()",
        ResourceWarning,
        *origin,
    )
    shutdown(portal, client, caches)
