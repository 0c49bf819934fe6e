"""Writing analytics results: table, JSON, JSON Lines, CSV and Parquet."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable
from typing import IO, Any

import attrs

from .._frames import require_extra, to_arrow
from .._tables import CAMPAIGN_COLUMNS, Kind
from ..errors import InvalidRequestError
from ..models import CampaignAnalytics
from ..wire import to_wire

__all__ = ["CSV_COLUMNS", "FORMATS", "ParquetWriter", "csv_row", "write_results"]

FORMATS = ("table", "json", "jsonl", "csv", "parquet")

CSV_COLUMNS = tuple(column.name for column in CAMPAIGN_COLUMNS)
"""One CSV row per campaign: identity, totals (empty when the API omits them), rates as
fractions with four decimals, the number of main-sequence steps and of subsequences.
The same columns as the DataFrames (``sendkit_async._tables.CAMPAIGN_COLUMNS``)."""


def csv_row(a: CampaignAnalytics, total_leads: int | None = None) -> dict[str, Any]:
    """The flattened CSV columns of one result.

    ``total_leads`` (from the campaign listing) fills the column when the analytics
    body has no ``totalLeads`` (the current API shape omits it).
    """
    row = {c.name: _csv_value(c.kind, c.get(a)) for c in CAMPAIGN_COLUMNS}
    if row["total_leads"] is None:
        row["total_leads"] = total_leads
    return row


def _csv_value(kind: Kind, value: Any) -> Any:
    return f"{value:.4f}" if kind is Kind.FLOAT and value is not None else value


def with_listed_leads(a: CampaignAnalytics, total_leads: int | None) -> CampaignAnalytics:
    """``a`` with the listing's lead count where its body has none (as :func:`csv_row`)."""
    if a.stats.total_leads is not None or total_leads is None:
        return a
    return attrs.evolve(a, stats=attrs.evolve(a.stats, total_leads=total_leads))


class ParquetWriter:
    """Keeps every result, writes one Parquet file at the end (also on interruption).

    Raises:
        MissingDependencyError: pyarrow is not installed (at construction, before
            anything is fetched).
    """

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.kept: list[CampaignAnalytics] = []
        self._parquet = require_extra("pyarrow.parquet", "arrow", "--format parquet")

    @staticmethod
    def check(path: str | None) -> None:
        """Fail before any fetch if Parquet cannot be written to ``path`` (None: stdout).

        Raises:
            MissingDependencyError: pyarrow is not installed.
            InvalidRequestError: stdout is a terminal (Parquet is binary).
        """
        require_extra("pyarrow.parquet", "arrow", "--format parquet")
        if (path is None or path == "-") and sys.stdout.isatty():
            raise InvalidRequestError(
                "--format parquet writes binary: give --output FILE or redirect stdout"
            )

    def add(self, result: CampaignAnalytics, *, total_leads: int | None = None) -> None:
        """Keep one result; ``total_leads`` from the listing fills the column."""
        self.kept.append(with_listed_leads(result, total_leads))

    def finish(self) -> None:
        """Write the kept results as one table (the DataFrames' columns, without ``error``)."""
        self._parquet.write_table(to_arrow(self.kept, errors="skip"), self.out)
        self.out.flush()


class StreamWriter:
    """Writes results one at a time where the format allows (jsonl, csv), else at the end."""

    def __init__(self, fmt: str, out: IO[str]) -> None:
        self.fmt = fmt
        self.out = out
        self.kept: list[CampaignAnalytics] = []
        self._csv: csv.DictWriter[str] | None = None
        if fmt == "csv":
            self._csv = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
            self._csv.writeheader()

    def add(self, result: CampaignAnalytics, *, total_leads: int | None = None) -> None:
        """Write (or keep) one result; ``total_leads`` from the listing fills the CSV column."""
        if self.fmt == "jsonl":
            self.out.write(json.dumps(to_wire(result), separators=(",", ":")) + "\n")
        elif self._csv is not None:
            self._csv.writerow(csv_row(result, total_leads))
        else:
            self.kept.append(result)

    def finish(self) -> None:
        """Write what was kept (json, table) and flush; also on interruption, so a
        partial run still gives a valid JSON array."""
        if self.fmt == "json":
            json.dump([to_wire(r) for r in self.kept], self.out, indent=2)
            self.out.write("\n")
        elif self.fmt == "table":
            write_table(self.kept, self.out)
        self.out.flush()


def write_table(results: Iterable[CampaignAnalytics], out: IO[str]) -> None:
    """A rich table of the main figures."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Campaign analytics", show_lines=False)
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("status")
    for header in ("sent", "open", "click", "reply", "bounce"):
        table.add_column(header, justify="right", no_wrap=True)
    for a in results:
        table.add_row(
            a.campaign.id,
            a.campaign.name,
            a.campaign.status,
            f"{a.sent:,}",
            f"{a.open_rate:.1%}",
            f"{a.click_rate:.1%}",
            f"{a.reply_rate:.1%}",
            f"{a.bounce_rate:.1%}",
        )
    Console(file=out, width=max(100, Console().width)).print(table)


def write_results(results: Iterable[CampaignAnalytics], fmt: str, out: IO[str]) -> None:
    """Write all ``results`` in ``fmt``."""
    writer = StreamWriter(fmt, out)
    for result in results:
        writer.add(result)
    writer.finish()
