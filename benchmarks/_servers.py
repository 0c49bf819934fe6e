"""Servers the benchmarks start in their own process (never imported by the client side).

    python benchmarks/_servers.py sim [simulator options]   # the SendKit simulator, plus
        GET /_simulator/timeline  -> [[loop_time, status], ...] of every answered request
        GET /_simulator/ids       -> every campaign id, in listing order
    python benchmarks/_servers.py echo                      # any campaign id, a fixed body

Both print ``... listening on http://127.0.0.1:PORT`` once ready and stop on SIGTERM.
``sim`` takes exactly the options of ``python -m sendkit_async.simulator``; the two extra
admin routes exist because ``/_simulator/stats`` leaves the timeline out.

The benchmark scripts also import the helpers below (``start_nginx``, ``start_redis``,
``stop``): servers nobody here wrote, started on loopback and stopped the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


# -- third-party servers, for the benchmark scripts -----------------------------------

# nginx ``limit_req``: rate R, burst 20, nodelay (rejected requests are free), bare 429s
# unless {retry_after} adds the header. {key}: one limit for every request
# (``$server_name``) or one per API key (``$http_x_api_key``).
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format st '$status';
  {access_log}
  client_body_temp_path {prefix}/tmp;
  proxy_temp_path {prefix}/tmp;
  fastcgi_temp_path {prefix}/tmp;
  uwsgi_temp_path {prefix}/tmp;
  scgi_temp_path {prefix}/tmp;
  limit_req_zone {key} zone=api:1m rate={rate}r/s;
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    server_name bench;
    location / {{
      limit_req zone=api burst={burst} nodelay;
      limit_req_status 429;
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      error_page 429 = @throttled;
    }}
    location @throttled {{
      {retry_after}
      return 429 '{{"error": "Too Many Requests", "message": "slow down", "code": 429}}';
    }}
  }}
}}
"""
ONE_LIMIT, PER_KEY = "$server_name", "$http_x_api_key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any], what: str) -> None:
    """Return once ``port`` accepts connections; RuntimeError after 10 s or if ``proc`` ends."""
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"{what} did not start")


def stop(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; a process already stopped is left
    as it is."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def start_nginx(
    backend: int,
    rate: float,
    tmp: Path,
    *,
    key: str = ONE_LIMIT,
    retry_after: int | None = None,
    burst: int = 20,
    log_statuses: bool = False,
) -> tuple[subprocess.Popen[str], str]:
    """nginx on loopback in front of ``127.0.0.1:backend`` (see ``NGINX_CONF``); its URL.

    ``tmp`` holds its files; ``log_statuses`` writes each answer's status, one a line, to
    ``tmp/access.log`` (read it after :func:`stop`).
    """
    port = free_port()
    scratch = tmp / "tmp"
    scratch.mkdir(exist_ok=True)
    # nginx's worker drops root for nobody, who must write its temp files here.
    os.chmod(tmp, 0o777)  # noqa: S103
    os.chmod(scratch, 0o777)  # noqa: S103
    conf = NGINX_CONF.format(
        prefix=tmp,
        rate=int(rate),
        burst=burst,
        backend=backend,
        port=port,
        key=key,
        access_log=f"access_log {tmp}/access.log st;" if log_statuses else "access_log off;",
        retry_after="" if retry_after is None else f"add_header Retry-After {retry_after} always;",
    )
    (tmp / "nginx.conf").write_text(conf)
    cmd = [shutil.which("nginx") or "nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf")]
    proc = subprocess.Popen(  # noqa: S603 - fixed arguments
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    wait_port(port, proc, "nginx")
    return proc, f"http://127.0.0.1:{port}"


def start_redis() -> tuple[subprocess.Popen[bytes] | None, str]:
    """A throwaway redis-server on loopback, or none when ``SENDKIT_BENCH_REDIS_URL`` names
    one; (the process to :func:`stop`, or None, and its URL)."""
    given = os.environ.get("SENDKIT_BENCH_REDIS_URL")
    if given:
        return None, given
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("no redis-server on PATH: install it or set SENDKIT_BENCH_REDIS_URL")
    port = free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)  # noqa: S603 - fixed arguments
    wait_port(port, proc, "redis-server")
    return proc, f"redis://127.0.0.1:{port}/0"


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
