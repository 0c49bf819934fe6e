"""Command line: ``python -m sendkit_async.simulator`` (also ``sendkit-async simulate``).

Exit status: 0 after Ctrl-C or SIGTERM (honoured at any time, also while the
workspace is generated); 1 the address cannot be bound; 2 a bad argument.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from types import FrameType

from ._config import MAX_CAMPAIGNS, SHAPES, SimulatorConfig
from ._limits import HEADER_MODES
from ._server import run_simulator

DEFAULT_PORT = 8787
NOTICE_CAMPAIGNS = 100_000
"""From this size on, a line on stderr says the workspace is being generated."""


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be from 0 to 65535, got {port}")
    return port


def _campaign_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= count <= MAX_CAMPAIGNS:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_CAMPAIGNS:,}, got {count:,}")
    return count


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the simulator's options to ``parser`` (a new one when None) and return it."""
    if parser is None:
        parser = argparse.ArgumentParser(
            prog="python -m sendkit_async.simulator",
            description="Serve a local simulator of the SendKit API.",
        )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    add(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="port, 0 to 65535; 0 picks a free one (default: %(default)s)",
    )
    add(
        "--campaigns",
        type=_campaign_count,
        default=2000,
        help=f"campaigns in the workspace, at most {MAX_CAMPAIGNS:,} (default: %(default)s)",
    )
    add(
        "--seed",
        type=int,
        default=0,
        help="seed of the data and fault draws (default: %(default)s)",
    )
    add("--shape", choices=SHAPES, default="current", help="campaign analytics shape")
    add("--rate-limit", type=float, default=None, metavar="RPS", help="requests/s per key")
    add("--burst", type=int, default=None, help="bucket size (default: ceil(rate limit))")
    add("--rate-limit-headers", choices=HEADER_MODES, default="x-ratelimit")
    add("--fault-rate", type=float, default=0.0, help="share of requests answered 500/502/503")
    add("--fault-retry-after", action="store_true", help="503 faults carry Retry-After: 1")
    add("--reset-rate", type=float, default=0.0, help="share of connections reset")
    add("--latency-ms", type=float, default=0.0, help="added latency per request")
    add("--jitter-ms", type=float, default=0.0, help="plus uniform random 0..JITTER_MS")
    add("--slow-body-ms", type=float, default=0.0, help="spread each body over this many ms")
    add(
        "--api-key",
        action="append",
        default=[],
        dest="api_keys",
        metavar="KEY",
        help="accept only this key (repeatable; default: any well-formed key)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """Raises: ValueError: an option value is invalid."""
    return SimulatorConfig(
        campaigns=args.campaigns,
        seed=args.seed,
        shape=args.shape,
        api_keys=tuple(args.api_keys),
        rate_limit=args.rate_limit,
        burst=args.burst,
        rate_limit_headers=args.rate_limit_headers,
        fault_rate=args.fault_rate,
        fault_retry_after=args.fault_retry_after,
        reset_rate=args.reset_rate,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        slow_body_ms=args.slow_body_ms,
    )


def _stop_now(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # ends the synchronous work at once; callers exit quietly


async def serve(config: SimulatorConfig, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, either of which may also come before serving starts.

    Raises:
        KeyboardInterrupt: SIGTERM (or SIGINT) while the workspace was generated.
        OSError: the address cannot be bound.
    """
    # Generating the workspace is synchronous: the loop's own handlers would only run
    # after it. Until the server is up, a plain handler stops the work where it is.
    previous = signal.signal(signal.SIGTERM, _stop_now)
    try:
        if config.campaigns >= NOTICE_CAMPAIGNS:
            print(f"generating {config.campaigns:,} campaigns...", file=sys.stderr, flush=True)
        async with run_simulator(config, host=host, port=port) as sim:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):  # e.g. Windows
                    loop.add_signal_handler(sig, stop.set)
            print(
                f"SendKit simulator listening on {sim.base_url} ({config.campaigns} campaigns)",
                flush=True,
            )
            await stop.wait()
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Run the simulator; returns the exit status (0 after Ctrl-C / SIGTERM)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(serve(config, args.host, args.port))
    except KeyboardInterrupt:
        pass  # platforms without loop signal handlers
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
