"""``sendkit-async demo``: a whole workspace from the bundled simulator, with a summary."""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from .. import AsyncSendKit
from ..models import CampaignAnalytics
from ..simulator import SimulatorConfig, run_simulator
from ._progress import ProgressBar

__all__ = ["run_demo"]

DEMO_KEY = "sk_demo_local_simulator"


async def run_demo(args: argparse.Namespace) -> int:
    """Start the simulator in-process, fetch every campaign, print a summary."""
    from . import EXIT_FAILURES, EXIT_OK

    console = Console()
    config = SimulatorConfig(
        campaigns=args.campaigns,
        seed=args.seed,
        rate_limit=args.rate_limit,
        burst=max(1, int(args.rate_limit // 10)),
        fault_rate=args.fault_rate,
        latency_ms=5.0,
        jitter_ms=10.0,
    )
    console.print(
        f"[bold]sendkit-async demo[/]: simulator with {config.campaigns:,} campaigns, "
        f"limit {config.rate_limit:g} req/s (burst {config.effective_burst}), "
        f"{config.fault_rate:.0%} faults"
    )
    async with run_simulator(config) as sim:
        async with AsyncSendKit(api_key=DEMO_KEY, base_url=sim.base_url) as client:
            overview = await client.analytics.overview()
            total = overview.total_campaigns
            results: list[CampaignAnalytics] = []
            failed = 0
            started = time.monotonic()
            with ProgressBar(total, enabled=not args.no_progress) as bar:
                async for result in client.iter_campaigns(client.campaigns.iter_ids()):
                    bar.advance(result.ok)
                    if result.value is not None:
                        results.append(result.value)
                    else:
                        failed += 1
            wall = time.monotonic() - started
            stats, limits = client.stats, client.rate_limit
        server = sim.stats
    _print_summary(console, overview, results, failed, wall, stats, limits, server)
    return EXIT_FAILURES if failed else EXIT_OK


def _print_summary(console, overview, results, failed, wall, stats, limits, server) -> None:  # type: ignore[no-untyped-def]
    totals = Table(title="Workspace totals", show_header=False)
    rates = overview.rates
    for label, value in (
        ("campaigns", f"{overview.total_campaigns:,} ({overview.active_campaigns:,} active)"),
        ("sent", f"{overview.total_sent:,}"),
        ("opened", f"{overview.total_opened:,} ({rates.open})"),
        ("clicked", f"{overview.total_clicked:,} ({rates.click})"),
        ("replied", f"{overview.total_replied:,} ({rates.reply})"),
        ("positive replies", f"{overview.total_positive_replied:,} ({rates.positive_reply})"),
        ("bounced", f"{overview.total_bounced:,} ({rates.bounce})"),
    ):
        totals.add_row(label, value)
    console.print(totals)

    top = Table(title="Top 10 campaigns by reply rate (at least 100 sent)")
    for column in ("campaign", "status", "sent", "reply rate", "open rate"):
        top.add_column(column, justify="left" if column in ("campaign", "status") else "right")
    ranked = sorted((a for a in results if a.sent >= 100), key=lambda a: -a.reply_rate)
    for a in ranked[:10]:
        top.add_row(
            a.campaign.name,
            a.campaign.status,
            f"{a.sent:,}",
            f"{a.reply_rate:.1%}",
            f"{a.open_rate:.1%}",
        )
    console.print(top)

    report = Table(title="Run report", show_header=False)
    for label, value in (
        ("campaigns fetched", f"{len(results):,} ok, {failed} failed"),
        ("wall time", f"{wall:.1f} s"),
        ("requests sent", f"{stats.requests:,} ({stats.requests / wall:,.0f} req/s)"),
        ("retries", f"{stats.retries:,}"),
        ("429s seen", f"{stats.rate_limited:,}"),
        # Summed over requests, so it can exceed the wall time: many wait at once.
        ("paced waiting", f"{limits.throttled_seconds:.1f} s summed over requests"),
        ("server saw", ", ".join(f"{k}: {v:,}" for k, v in sorted(server.by_status.items()))),
    ):
        report.add_row(label, value)
    console.print(report)
