"""Serve one of the example web apps (examples/) for bench_webapp.py, in its own process.

    python benchmarks/_webapp_server.py fastapi|aiohttp --base-url URL [options]

Prints ``... listening on http://127.0.0.1:PORT`` once the socket is bound and stops on
SIGTERM. The key comes from ``SENDKIT_API_KEY``. Options:

    --max-concurrency N   the client's max_concurrency (default: the client's default)
    --retry web|default   the examples' WEB_RETRY (default) or the client's RetryPolicy()
    --no-disconnect       serve as if nothing cancelled a call whose browser went away:
                          aiohttp without handler_cancellation, FastAPI without
                          unless_disconnected
    --coalesce on|off     pass coalesce= to the client (only if it has that option)
    --cache-ttl S         pass cache=MemoryCache(maxsize=10_000, ttl=S) (idem)
"""

from __future__ import annotations

import argparse
import inspect
import socket
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

from sendkit_async import AsyncSendKit, RetryPolicy

T = TypeVar("T")


def client_features() -> set[str]:
    """Which of the optional web features this client takes as AsyncSendKit options."""
    return {"coalesce", "cache"} & set(inspect.signature(AsyncSendKit).parameters)


def memory_cache() -> Any:
    """The client's MemoryCache class, exported at the top or from a ``cache`` module."""
    import importlib

    import sendkit_async

    found = getattr(sendkit_async, "MemoryCache", None)
    if found is None:
        found = importlib.import_module("sendkit_async.cache").MemoryCache
    return found


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"base_url": args.base_url}
    if args.max_concurrency:
        options["max_concurrency"] = args.max_concurrency
    features = client_features()
    if args.coalesce is not None:
        if "coalesce" not in features:
            raise SystemExit("this client has no coalesce= option")
        options["coalesce"] = args.coalesce == "on"
    if args.cache_ttl:
        if "cache" not in features:
            raise SystemExit("this client has no cache= option")
        options["cache"] = memory_cache()(maxsize=10_000, ttl=args.cache_ttl)
    return options


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/_webapp_server.py")
    parser.add_argument("framework", choices=("fastapi", "aiohttp"))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--max-concurrency", type=int, default=0)
    parser.add_argument("--retry", choices=("web", "default"), default="web")
    parser.add_argument("--no-disconnect", action="store_true")
    parser.add_argument("--coalesce", choices=("on", "off"), default=None)
    parser.add_argument("--cache-ttl", type=float, default=0.0)
    args = parser.parse_args(argv)
    options = client_options(args)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if args.framework == "aiohttp":
        from aiohttp import web

        from examples import aiohttp_app

        if args.retry == "default":
            aiohttp_app.WEB_RETRY = RetryPolicy()
        print(f"benchmark server listening on http://127.0.0.1:{port}", flush=True)
        web.run_app(
            aiohttp_app.make_app(**options),
            sock=sock,
            print=None,
            access_log=None,
            handler_cancellation=not args.no_disconnect,
        )
        return 0

    import uvicorn

    from examples import fastapi_app

    if args.retry == "default":
        fastapi_app.WEB_RETRY = RetryPolicy()
    if args.no_disconnect:

        async def just_await(request: object, call: Awaitable[T]) -> T:
            return await call

        fastapi_app.unless_disconnected = just_await
    app = fastapi_app.create_app(**options)
    sock.listen(1024)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", ws="none", backlog=1024
    )
    print(f"benchmark server listening on http://127.0.0.1:{port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
