"""``sendkit-async analytics``: analytics for given ids or a whole workspace, as a file."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import IO

from .. import AsyncSendKit
from .._protocol import iso_date
from ..errors import SendKitError
from ._output import StreamWriter
from ._progress import ProgressBar

__all__ = ["run_analytics"]


async def run_analytics(args: argparse.Namespace) -> int:
    """Fetch, write, report failures on stderr; returns the exit status."""
    from . import EXIT_FAILURES, EXIT_OK, EXIT_USAGE

    if bool(args.ids) == bool(args.all):
        print("sendkit-async: error: give campaign ids or --all (not both)", file=sys.stderr)
        return EXIT_USAGE
    if args.status and not args.all:
        print("sendkit-async: error: --status goes with --all", file=sys.stderr)
        return EXIT_USAGE
    iso_date(args.from_, "--from")  # a bad date is a usage error, not a failure per campaign
    iso_date(args.to, "--to")
    options: dict[str, object] = {"base_url": args.base_url, "workspace_id": args.workspace_id}
    if args.rate:
        options["rate_limit"] = args.rate
    if args.concurrency:
        options["max_concurrency"] = args.concurrency
    failures: list[tuple[str, SendKitError]] = []
    async with AsyncSendKit(**options) as client:  # type: ignore[arg-type]
        ids: Iterable[str] | AsyncIterator[str]
        if args.all:
            first = await client.campaigns.list(status=args.status, limit=1)
            total = first.pagination.total
            ids = client.campaigns.iter_ids(status=args.status)
        else:
            ids = list(dict.fromkeys(args.ids))
            total = len(ids)
        with _open_output(args.output) as out:
            writer = StreamWriter(args.format, out)
            with ProgressBar(total, enabled=not args.no_progress) as bar:
                async for result in client.iter_campaigns(
                    ids, ordered=True, concurrency=args.concurrency, from_=args.from_, to=args.to
                ):
                    bar.advance(result.ok)
                    if result.error is not None:
                        failures.append((str(result.id), result.error))
                    elif result.value is not None:
                        writer.add(result.value)
            writer.finish()
    for campaign_id, error in failures:
        print(f"failed: {campaign_id}: {error}", file=sys.stderr)
    return EXIT_FAILURES if failures else EXIT_OK


@contextlib.contextmanager
def _open_output(path: str | None) -> Iterator[IO[str]]:
    if path is None or path == "-":
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8", newline="") as handle:
        yield handle
