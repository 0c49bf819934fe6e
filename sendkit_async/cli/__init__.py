"""The ``sendkit-async`` command line (also ``python -m sendkit_async``).

Exit status: 0 all ok; 1 some campaigns failed (listed on stderr, the rest
written); 2 a usage, configuration or authentication error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import AuthenticationError, ConfigurationError, PermissionDeniedError, SendKitError

__all__ = ["EXIT_FAILURES", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from ..simulator._cli import build_parser as simulator_options
    from ._output import FORMATS

    parser = argparse.ArgumentParser(
        prog="sendkit-async", description="Campaign analytics from the SendKit API."
    )
    parser.add_argument("--version", action="version", version=f"sendkit-async {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="fetch a whole workspace from the bundled simulator")
    demo.add_argument("--campaigns", type=int, default=3000, help="workspace size (3000)")
    demo.add_argument("--rate-limit", type=float, default=600.0, help="simulated limit, req/s")
    demo.add_argument("--fault-rate", type=float, default=0.03, help="share of 5xx faults")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")

    analytics = commands.add_parser("analytics", help="analytics for campaigns, as a file")
    analytics.add_argument("ids", nargs="*", metavar="ID", help="campaign ids")
    analytics.add_argument("--all", action="store_true", help="every campaign of the workspace")
    analytics.add_argument("--status", help="with --all: only campaigns with this status")
    analytics.add_argument("--from", dest="from_", metavar="DATE", help="ISO date or date-time")
    analytics.add_argument("--to", metavar="DATE", help="ISO date or date-time")
    analytics.add_argument("--format", choices=FORMATS, default="table")
    analytics.add_argument("--output", "-o", metavar="FILE", help="write here (default stdout)")
    analytics.add_argument("--concurrency", type=int, default=None, help="requests in flight")
    analytics.add_argument("--rate", type=float, default=None, help="never exceed REQ/S")
    analytics.add_argument("--base-url", help="API base URL (default $SENDKIT_BASE_URL or cloud)")
    analytics.add_argument("--workspace-id", help="for platform keys (sk_user_...)")
    analytics.add_argument("--no-progress", action="store_true", help="no progress bar")

    simulate = commands.add_parser("simulate", help="run the local API simulator")
    simulator_options(simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "simulate":
            from ..simulator._cli import config_from_args, serve

            asyncio.run(serve(config_from_args(args), args.host, args.port))
            return EXIT_OK
        if args.command == "demo":
            from ._demo import run_demo

            return asyncio.run(run_demo(args))
        from ._analytics import run_analytics

        return asyncio.run(run_analytics(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ConfigurationError, AuthenticationError, PermissionDeniedError, ValueError) as exc:
        if args.debug:
            raise
        print(f"sendkit-async: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SendKitError as exc:
        if args.debug:
            raise
        print(f"sendkit-async: error: {exc}", file=sys.stderr)
        return EXIT_FAILURES


def entry_point() -> None:
    """Console-script entry: exit with :func:`main`'s status."""
    raise SystemExit(main())
