"""The ``sendkit-async`` command line (also ``python -m sendkit_async``).

Exit status: see :data:`EXIT_CODES` (also printed by ``analytics --help``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Sequence

from .._version import __version__
from ..errors import (
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    MissingDependencyError,
    PermissionDeniedError,
    SendKitError,
)

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_CODES",
    "EXIT_FAILURES",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a Unix tool killed by a closed pipe

EXIT_CODES = (
    (EXIT_OK, "every campaign was fetched and written"),
    (EXIT_FAILURES, "some campaigns failed (each listed on stderr; the rest written)"),
    (EXIT_USAGE, "usage, configuration, missing extra, or authentication/permission error"),
    (EXIT_UNREACHABLE, "the API could not be reached: nothing was fetched"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C); what was fetched is written"),
    (EXIT_BROKEN_PIPE, "the output pipe was closed (e.g. `| head`); ends quietly"),
)
"""Every exit status of the command line, with its meaning."""

EPILOG = "exit status:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES)
EPILOG += "\n\nthe API key is read from the SENDKIT_API_KEY environment variable."


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

    analytics = commands.add_parser(
        "analytics",
        help="analytics for campaigns, as a file",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    analytics.add_argument("ids", nargs="*", metavar="ID", help="campaign ids")
    analytics.add_argument("--all", action="store_true", help="every campaign of the workspace")
    analytics.add_argument("--status", help="with --all: only campaigns with this status")
    analytics.add_argument("--from", dest="from_", metavar="DATE", help="ISO date or date-time")
    analytics.add_argument("--to", metavar="DATE", help="ISO date or date-time")
    analytics.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default; for people), json (one array), jsonl (one object a line, "
        "streamed), csv (one row a campaign, streamed), parquet (one file at the end, "
        "binary: with --output or a redirected stdout; needs pyarrow)",
    )
    analytics.add_argument("--output", "-o", metavar="FILE", help="write here (default stdout)")
    analytics.add_argument("--concurrency", type=int, default=None, help="requests in flight")
    analytics.add_argument("--rate", type=float, default=None, help="never exceed REQ/S")
    analytics.add_argument("--base-url", help="API base URL (default $SENDKIT_BASE_URL or cloud)")
    analytics.add_argument("--workspace-id", help="for platform keys (sk_user_...)")
    analytics.add_argument("--no-progress", action="store_true", help="no progress bar")

    simulate = commands.add_parser("simulate", help="run the local API simulator")
    simulator_options(simulate)

    from ._jobs import add_jobs_parser

    add_jobs_parser(commands)
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
        if args.command == "jobs":
            from ._jobs import run_jobs

            return run_jobs(args)
        if args.command == "demo":
            from ._demo import run_demo

            return asyncio.run(run_demo(args))
        from ._analytics import run_analytics

        return asyncio.run(run_analytics(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _broken_pipe()
    except (
        ConfigurationError,
        AuthenticationError,
        PermissionDeniedError,
        MissingDependencyError,
        ValueError,
    ) as exc:
        return _fail(exc, EXIT_USAGE, args.debug)
    except APIConnectionError as exc:
        return _fail(exc, EXIT_UNREACHABLE, args.debug, "could not reach the API: ")
    except SendKitError as exc:
        return _fail(exc, EXIT_FAILURES, args.debug)


def _fail(exc: BaseException, code: int, debug: bool, prefix: str = "") -> int:
    """One line on stderr (after the traceback with --debug, which never changes the code)."""
    if debug:
        traceback.print_exception(exc)
    print(f"sendkit-async: error: {prefix}{exc}", file=sys.stderr)
    return code


def _broken_pipe() -> int:
    """The reader went away (``| head``): end quietly, like a Unix tool."""
    # Python flushes stdout again at exit, which would fail and print a warning:
    # point the descriptor at /dev/null so that flush succeeds silently.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return EXIT_BROKEN_PIPE


def entry_point() -> None:
    """Console-script entry: exit with :func:`main`'s status."""
    raise SystemExit(main())
