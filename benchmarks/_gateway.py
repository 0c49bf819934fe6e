"""A stand-in for the gateways in front of real APIs, run in its own process by the benchmarks.

    python benchmarks/_gateway.py [--limit 100] [--window sliding|none] [--retry-after 2]
        [--fault-rate 0.05] [--fault-retry-after 1] [--reset-rate 0.01]
        [--outage START:SECONDS:KIND] [--latency MS] [--jitter MS]

Serves ``GET /v1/analytics/campaigns/{id}`` (a fixed, valid body) on 127.0.0.1 with:

- ``--window sliding``: a sliding one-second window that counts EVERY request, the
  rejected ones too (as HAProxy stick-table rates and many API gateways do; nginx
  ``limit_req`` does not), answering 429 beyond ``--limit`` per second, with
  ``Retry-After: N`` when ``--retry-after`` is given, else bare;
- ``--fault-rate``: that share of admitted requests answered 503 (with
  ``Retry-After: --fault-retry-after`` when given); ``--reset-rate``: connections reset;
- ``--outage START:SECONDS:KIND``: from START seconds after the first request, for
  SECONDS, every request fails: ``503`` (bare 503s), ``429ra0`` (429 with
  ``Retry-After: 0``) or ``refused`` (the listening socket is closed and open
  connections are reset, so connects are refused);
- ``--latency MS``: successful answers come after 0.5-1.5 x MS milliseconds (a backend's
  time); refusals and faults stay immediate, as a gateway's are.
- ``--jitter MS``: every request reaches the limiter 0-MS milliseconds after it came
  (the network on the way in, drawn per request: requests sent evenly arrive bunched).

``GET /_gateway/stats`` returns ``{"timeline": [[t, status], ...]}`` (t from the first
request; status 0 for a reset). Prints ``... listening on http://127.0.0.1:PORT`` once
ready; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys
import time
from collections import deque

from _servers import _ECHO_TEMPLATE  # type: ignore[import-not-found]
from aiohttp import web


class Gateway:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(7)
        self.jitter_rng = random.Random(11)  # (its own: the faults drawn stay the same)
        self.window: deque[float] = deque()
        self.start: float | None = None
        self.timeline: list[tuple[float, int]] = []
        self.outage: tuple[float, float, str] | None = None
        if args.outage:
            at, length, kind = args.outage.split(":")
            self.outage = (float(at), float(length), kind)
        self.site: web.TCPSite | None = None
        self.runner: web.AppRunner | None = None
        self.port = 0

    def now(self) -> float:
        t = time.monotonic()
        if self.start is None:
            self.start = t
            if self.outage is not None and self.outage[2] == "refused":
                asyncio.get_running_loop().create_task(self.refuse(*self.outage[:2]))
        return t - self.start

    def in_outage(self, t: float) -> str | None:
        if self.outage is None:
            return None
        at, length, kind = self.outage
        return kind if at <= t < at + length else None

    async def refuse(self, at: float, length: float) -> None:
        await asyncio.sleep(at)
        assert self.site is not None and self.runner is not None
        await self.site.stop()
        await asyncio.sleep(length)
        self.site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
        await self.site.start()

    async def campaign(self, request: web.Request) -> web.StreamResponse:
        if self.args.jitter > 0:
            await asyncio.sleep(self.args.jitter / 1000.0 * self.jitter_rng.random())
        t = self.now()
        outage = self.in_outage(t)
        if outage == "refused":
            return self.reset(request, t)
        if outage == "503":
            return self.answer(t, 503, {})
        if outage == "429ra0":
            return self.answer(t, 429, {"Retry-After": "0"})
        args = self.args
        if args.window == "sliding":
            horizon = t - 1.0
            while self.window and self.window[0] <= horizon:
                self.window.popleft()
            over = len(self.window) >= args.limit
            self.window.append(t)  # rejected requests count too
            if over:
                ra = {} if args.retry_after is None else {"Retry-After": str(args.retry_after)}
                return self.answer(t, 429, ra)
        draw = self.rng.random()
        if draw < args.reset_rate:
            return self.reset(request, t)
        if draw < args.reset_rate + args.fault_rate:
            ra = (
                {}
                if args.fault_retry_after is None
                else {"Retry-After": str(args.fault_retry_after)}
            )
            return self.answer(t, 503, ra)
        if args.latency > 0:
            await asyncio.sleep(args.latency / 1000.0 * (0.5 + self.rng.random()))
        self.timeline.append((t, 200))
        cid = request.match_info["id"]
        body = _ECHO_TEMPLATE[0] + cid + _ECHO_TEMPLATE[1]
        return web.Response(text=body, content_type="application/json")

    def answer(self, t: float, status: int, headers: dict[str, str]) -> web.Response:
        self.timeline.append((t, status))
        body = f'{{"error": "unavailable", "message": "try later", "code": {status}}}'
        return web.Response(
            status=status, text=body, headers=headers, content_type="application/json"
        )

    def reset(self, request: web.Request, t: float) -> web.Response:
        self.timeline.append((t, 0))
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=200)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"timeline": self.timeline})


async def serve(args: argparse.Namespace) -> None:
    gw = Gateway(args)
    app = web.Application()
    app.router.add_get("/v1/analytics/campaigns/{id}", gw.campaign)
    app.router.add_get("/_gateway/stats", gw.stats)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    gw.runner = runner
    try:
        gw.site = web.TCPSite(runner, "127.0.0.1", args.port, reuse_address=True)
        await gw.site.start()
        gw.port = runner.addresses[0][1]
        print(f"gateway listening on http://127.0.0.1:{gw.port}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--limit", type=float, default=100.0)
    parser.add_argument("--window", choices=("sliding", "none"), default="none")
    parser.add_argument("--retry-after", type=int, default=None)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--fault-retry-after", type=int, default=None)
    parser.add_argument("--reset-rate", type=float, default=0.0)
    parser.add_argument("--outage", default=None, help="START:SECONDS:503|429ra0|refused")
    parser.add_argument("--latency", type=float, default=0.0, help="ms before a 200")
    parser.add_argument("--jitter", type=float, default=0.0, help="ms on the way in, at most")
    asyncio.run(serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
