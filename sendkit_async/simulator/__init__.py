"""A local simulator of the SendKit API (``aiohttp.web``), in the spirit of stripe-mock.

Serves a deterministic generated workspace with the API's exact envelopes, plus
per-key rate limiting (four header conventions), seeded faults, latency and slow bodies::

    async with run_simulator(SimulatorConfig(campaigns=200, rate_limit=10)) as sim:
        ...  # point a client at sim.base_url; inspect sim.stats

Also runnable as ``python -m sendkit_async.simulator``. Data notes:

- "today" is fixed at ``ANCHOR_DATE`` (2025-06-30) so bodies are byte-identical between
  runs; the timeline covers the 365 days ending on it.
- ``from``/``to`` on campaign analytics: figures sent in the range (nested cumulative
  floors, exact against the daily rows); lead snapshots (totalLeads, statusBreakdown,
  addedCount, currentlyEnrolled) are not time-ranged.
- ``/v1/analytics/daily*``: one row per day of the range clipped to the timeline (zero
  rows included); an unknown 24-hex subsequenceId gives zero rows.
- ``/v1/campaigns``: ``limit`` above 100 is clamped to 100; below 1 or not an integer is
  400; an unknown ``status`` or ``cursor`` is 400; ``nextCursor`` is the page's last id
  even on the last page (stop on ``hasMore``).
- ``shape="original"`` workspaces have no subsequences (the original reference had none).
"""

from ._config import SimulatorConfig
from ._data import ANCHOR_DATE
from ._server import SIMULATOR_KEY, Simulator, make_app, run_simulator
from ._stats import SimulatorStats

__all__ = [
    "ANCHOR_DATE",
    "SIMULATOR_KEY",
    "Simulator",
    "SimulatorConfig",
    "SimulatorStats",
    "make_app",
    "run_simulator",
]
