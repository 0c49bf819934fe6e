"""Writing analytics results: table, JSON, JSON Lines and CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import IO, Any

from ..models import CampaignAnalytics
from ..wire import to_wire

__all__ = ["CSV_COLUMNS", "FORMATS", "csv_row", "write_results"]

FORMATS = ("table", "json", "jsonl", "csv")

CSV_COLUMNS = (
    "id",
    "name",
    "status",
    "total_leads",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "replied",
    "unsubscribed",
    "total_replied",
    "total_positive_replied",
    "open_rate",
    "click_rate",
    "bounce_rate",
    "reply_rate",
    "steps",
    "subsequences",
)
"""One CSV row per campaign: identity, totals (empty when the API omits them), rates as
fractions with four decimals, the number of main-sequence steps and of subsequences."""


def csv_row(a: CampaignAnalytics, total_leads: int | None = None) -> dict[str, Any]:
    """The flattened CSV columns of one result.

    ``total_leads`` (from the campaign listing) fills the column when the analytics
    body has no ``totalLeads`` (the current API shape omits it).
    """
    s = a.stats
    return {
        "id": a.campaign.id,
        "name": a.campaign.name,
        "status": a.campaign.status,
        "total_leads": s.total_leads if s.total_leads is not None else total_leads,
        "sent": s.sent,
        "delivered": s.delivered,
        "opened": s.opened,
        "clicked": s.clicked,
        "bounced": s.bounced,
        "replied": s.replied,
        "unsubscribed": s.unsubscribed,
        "total_replied": a.total_replied,
        "total_positive_replied": a.total_positive_replied,
        "open_rate": f"{a.open_rate:.4f}",
        "click_rate": f"{a.click_rate:.4f}",
        "bounce_rate": f"{a.bounce_rate:.4f}",
        "reply_rate": f"{a.reply_rate:.4f}",
        "steps": len(a.step_stats),
        "subsequences": len(a.subsequences),
    }


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
