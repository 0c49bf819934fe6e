"""``sendkit-async analytics``: analytics for given ids or a whole workspace, as a file."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import IO

from .. import AsyncSendKit
from .._protocol import iso_date
from ..errors import APIConnectionError, SendKitError
from ._output import ParquetWriter, StreamWriter
from ._progress import ProgressBar

__all__ = ["run_analytics"]


async def run_analytics(args: argparse.Namespace) -> int:
    """Fetch, write, report failures on stderr; returns the exit status."""
    from . import EXIT_FAILURES, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE

    if not os.environ.get("SENDKIT_API_KEY", "").strip():
        # The client's own message speaks to Python callers (api_key=...); the CLI
        # takes the key from the environment only, so it never shows in `ps`.
        print(
            "sendkit-async: error: no API key: set the SENDKIT_API_KEY environment variable",
            file=sys.stderr,
        )
        return EXIT_USAGE

    if bool(args.ids) == bool(args.all):
        print("sendkit-async: error: give campaign ids or --all (not both)", file=sys.stderr)
        return EXIT_USAGE
    if args.status and not args.all:
        print("sendkit-async: error: --status goes with --all", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "parquet":
        # Before anything is fetched or a file created: pyarrow missing is exit 2.
        ParquetWriter.check(args.output)
    iso_date(args.from_, "--from")  # a bad date is a usage error, not a failure per campaign
    iso_date(args.to, "--to")
    options: dict[str, object] = {"base_url": args.base_url, "workspace_id": args.workspace_id}
    if args.rate:
        options["rate_limit"] = args.rate
    if args.concurrency:
        options["max_concurrency"] = args.concurrency
    failures: list[tuple[str, SendKitError]] = []
    written = 0
    # Lead counts the listing gives (--all): the analytics body may lack totalLeads.
    leads: dict[str, int | None] = {}
    async with AsyncSendKit(**options) as client:  # type: ignore[arg-type]
        ids: Iterable[str] | AsyncIterator[str]
        if args.all:
            first = await client.campaigns.list(status=args.status, limit=1)
            total = first.pagination.total
            ids = _listed_ids(client, args.status, leads)
        else:
            ids = list(dict.fromkeys(args.ids))
            total = len(ids)
        with _writer(args.format, args.output) as writer:
            try:
                with ProgressBar(total, enabled=not args.no_progress) as bar:
                    async for result in client.iter_campaigns(
                        ids,
                        ordered=True,
                        concurrency=args.concurrency,
                        from_=args.from_,
                        to=args.to,
                    ):
                        bar.advance(result.ok)
                        known_leads = leads.pop(str(result.id), None)
                        if result.error is not None:
                            failures.append((str(result.id), result.error))
                        elif result.value is not None:
                            writer.add(result.value, total_leads=known_leads)
                            written += 1
            except (asyncio.CancelledError, KeyboardInterrupt):
                writer.finish()  # Ctrl-C: what was fetched is written (a valid JSON array)
                raise
            writer.finish()
    if failures and not written and all(isinstance(e, APIConnectionError) for _, e in failures):
        print(
            f"sendkit-async: error: could not reach the API at {client.base_url}: "
            f"none of {len(failures)} campaigns fetched ({failures[0][1]})",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
    for campaign_id, error in failures:
        print(f"failed: {campaign_id}: {error}", file=sys.stderr)
    return EXIT_FAILURES if failures else EXIT_OK


async def _listed_ids(
    client: AsyncSendKit, status: str | None, leads: dict[str, int | None]
) -> AsyncIterator[str]:
    """Every listed id, noting its lead count in ``leads`` (popped once written)."""
    async for campaign in client.campaigns.iter(status=status):
        leads[campaign.id] = campaign.stats.total_leads if campaign.stats else None
        yield campaign.id


@contextlib.contextmanager
def _writer(fmt: str, path: str | None) -> Iterator[StreamWriter | ParquetWriter]:
    if fmt != "parquet":
        with _open_output(path) as out:
            yield StreamWriter(fmt, out)
    elif path is None or path == "-":
        yield ParquetWriter(sys.stdout.buffer)
    else:
        with open(path, "wb") as handle:
            yield ParquetWriter(handle)


@contextlib.contextmanager
def _open_output(path: str | None) -> Iterator[IO[str]]:
    if path is None or path == "-":
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8", newline="") as handle:
        yield handle
