"""``Simulator`` (live state), ``make_app`` and ``run_simulator``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
from aiohttp import http_exceptions, web

from ._app import Handlers, build_routes, make_pipeline
from ._config import DATA_FIELDS, SimulatorConfig
from ._data import Workspace
from ._faults import FaultInjector
from ._limits import TokenBucketLimiter
from ._stats import SimulatorStats

SHUTDOWN_TIMEOUT = 2.0


class _MalformedRequestFilter(logging.Filter):
    """A request aiohttp cannot parse (a 100 KB query string, a broken header) is the
    client's mistake, already answered with a 400: one INFO line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, http_exceptions.HttpProcessingError):
            record.args = (record.getMessage(), type(exc).__name__, exc.code)
            record.msg = "%s: %s (answered %s)"
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


HTTP_LOGGER = logging.getLogger("sendkit_async.simulator.http")
HTTP_LOGGER.addFilter(_MalformedRequestFilter())


class Simulator:
    """The state behind one simulated API: config, workspace, stats, limiter, faults."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.workspace = Workspace(
            seed=config.seed, campaigns=config.campaigns, subsequences=config.shape == "current"
        )
        self.stats = SimulatorStats()
        self.faults = FaultInjector(config.seed)
        self.limiter: TokenBucketLimiter | None = None
        self.allowed_keys: frozenset[str] = frozenset()
        self._base_url: str | None = None
        # Clock of the rate limiter; None = the running loop's monotonic clock. Tests set a
        # fake clock here instead of sleeping.
        self.clock: Callable[[], float] | None = None
        self._apply(config)

    def _apply(self, config: SimulatorConfig) -> None:
        self.config = config
        self.allowed_keys = frozenset(config.api_keys)
        if config.rate_limit is None:
            self.limiter = None
        else:
            self.limiter = TokenBucketLimiter(config.rate_limit, config.effective_burst)

    def update(self, **changes: Any) -> SimulatorConfig:
        """Change settings at runtime (limits, faults, latency, keys); returns the new config.

        Changing ``rate_limit`` or ``burst`` starts every key with a full bucket.

        Raises:
            ValueError: a value is invalid, or a data setting (campaigns, seed, shape) was
                given: those fix the generated workspace.
        """
        fixed = DATA_FIELDS.intersection(changes)
        if fixed:
            raise ValueError(f"cannot change {', '.join(sorted(fixed))} of a running simulator")
        try:
            new = attrs.evolve(self.config, **changes)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        old = self.config
        limiter = self.limiter
        self._apply(new)
        if (old.rate_limit, old.effective_burst) == (new.rate_limit, new.effective_burst):
            self.limiter = limiter  # keep bucket state when the limits did not change
        return new

    @property
    def base_url(self) -> str:
        """``http://host:port`` (no trailing slash) once served by ``run_simulator``."""
        if self._base_url is None:
            raise RuntimeError("the simulator is not being served (use run_simulator)")
        return self._base_url

    @property
    def campaign_ids(self) -> list[str]:
        """Every campaign id in listing order (the workspace's list: do not mutate)."""
        return self.workspace.ids

    def __repr__(self) -> str:
        where = self._base_url or "not served"
        return f"<Simulator {where} campaigns={self.workspace.size} {self.stats!r}>"


SIMULATOR_KEY = web.AppKey("sendkit_simulator", Simulator)


def make_app(config: SimulatorConfig | None = None) -> web.Application:
    """Build the simulator's aiohttp application; ``app[SIMULATOR_KEY]`` is its state."""
    sim = Simulator(config if config is not None else SimulatorConfig())
    app = web.Application(middlewares=[make_pipeline(sim)])
    app[SIMULATOR_KEY] = sim
    build_routes(app, Handlers(sim))
    return app


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@contextlib.asynccontextmanager
async def run_simulator(
    config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[Simulator]:
    """Serve a simulator on ``host:port`` (0 = a free port) for the ``async with`` body.

    The server is always cleaned up, also on errors and cancellation.
    """
    app = make_app(config)
    sim = app[SIMULATOR_KEY]
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        logger=HTTP_LOGGER,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        sim._base_url = f"http://{_url_host(host)}:{bound_port}"
        yield sim
    finally:
        sim._base_url = None
        await runner.cleanup()
