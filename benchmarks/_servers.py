"""Servers the benchmarks start in their own process (never imported by the client side).

    python benchmarks/_servers.py sim [simulator options]   # the SendKit simulator, plus
        GET /_simulator/timeline  -> [[loop_time, status], ...] of every answered request
        GET /_simulator/ids       -> every campaign id, in listing order
    python benchmarks/_servers.py echo                      # any campaign id, a fixed body

Both print ``... listening on http://127.0.0.1:PORT`` once ready and stop on SIGTERM.
``sim`` takes exactly the options of ``python -m sendkit_async.simulator``; the two extra
admin routes exist because ``/_simulator/stats`` leaves the timeline out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys

from aiohttp import web

# Dict-order and content follow tests/fixtures/analytics_campaign_seed.json.
_ECHO_TEMPLATE = json.dumps(
    {
        "success": True,
        "data": {
            "campaign": {"id": "@@ID@@", "name": "Q1 Outreach", "status": "active"},
            "stats": {
                "totalLeads": 500,
                "sent": 1200,
                "opened": 540,
                "clicked": 120,
                "bounced": 36,
                "replied": 60,
            },
            "stepStats": [
                {"_id": 1, "sent": 500, "opened": 300, "clicked": 80, "bounced": 20},
                {"_id": 2, "sent": 400, "opened": 180, "clicked": 30, "bounced": 12},
                {"_id": 3, "sent": 300, "opened": 60, "clicked": 10, "bounced": 4},
            ],
            "statusBreakdown": {
                "active": 180,
                "completed": 250,
                "paused": 30,
                "bounced": 36,
                "removed": 4,
            },
            "totalReplied": 60,
        },
    },
    separators=(",", ":"),
).split("@@ID@@")


def _echo_app() -> web.Application:
    head, tail = (part.encode() for part in _ECHO_TEMPLATE)

    async def campaign(request: web.Request) -> web.Response:
        body = head + request.match_info["id"].encode() + tail
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/analytics/campaigns/{id}", campaign)
    return app


def _sim_app(argv: list[str]) -> tuple[web.Application, str]:
    # The simulator CLI's own parser, so `sim` accepts exactly its options.
    from sendkit_async.simulator import SIMULATOR_KEY, make_app
    from sendkit_async.simulator._cli import build_parser, config_from_args

    parser = build_parser()
    parser.prog = "python benchmarks/_servers.py sim"
    config = config_from_args(parser.parse_args(argv))
    app = make_app(config)
    sim = app[SIMULATOR_KEY]

    async def timeline(request: web.Request) -> web.Response:
        return web.json_response(sim.stats.timeline)

    async def ids(request: web.Request) -> web.Response:
        return web.json_response(sim.campaign_ids)

    # Under /_simulator/ the pipeline skips stats, limits and faults for these too.
    app.router.add_get("/_simulator/timeline", timeline)
    app.router.add_get("/_simulator/ids", ids)
    return app, f"({config.campaigns} campaigns)"


async def _serve(app: web.Application, what: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"benchmark server listening on http://127.0.0.1:{port} {what}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("sim", "echo"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "echo":
        app, what = _echo_app(), "(echo)"
    else:
        app, what = _sim_app(argv[1:])
    asyncio.run(_serve(app, what))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
