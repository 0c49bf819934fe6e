"""The example web apps under load: concurrency default, rate-limited upstream, disconnects.

Every part runs in a process of its own: the simulator (``_servers.py sim``), the example
app (``_webapp_server.py``: FastAPI under uvicorn, or aiohttp's own server) and the load
generator (``_webload.py``, an aiohttp client). Three tables:

1. **Concurrency** (issue #16 item 5): an unthrottled simulator with 50 ms of latency;
   2,000 requests for distinct campaigns at concurrency 200, through each app with the
   client's ``max_concurrency`` at 16 (the old default), 64 and 100.
2. **Rate-limited upstream** (the figure): the simulator limited to 50 requests/s (50 ms
   latency); 2,000 requests at concurrency 100 over 100 campaign ids (seeded uniform draws)
   through the FastAPI app, with the old and the new ``max_concurrency`` default, without
   and (when the installed client has ``coalesce=``/``cache=``) with coalescing and a 30 s
   in-memory cache.
3. **Browsers that give up**: the same limited simulator; 500 requests for distinct
   campaigns, 100 at a time, each abandoned after 1 s (its connection closed); how many
   still reach the upstream, counted once the app has gone quiet.

    python benchmarks/bench_webapp.py            # full run, ~3 minutes
    python benchmarks/bench_webapp.py --quick    # smaller, a smoke test
    python benchmarks/bench_webapp.py --only figure
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from _common import API_KEY, BENCH, ROOT, Section, child_env, ids_file, markdown, simulator
from _servers import stop

OLD_DEFAULT = 16
LIMITED = ("--campaigns", "2000", "--rate-limit", "50", "--latency-ms", "50", "--seed", "16")
UNLIMITED = ("--campaigns", "2000", "--latency-ms", "50", "--seed", "16")


def client_facts() -> dict[str, Any]:
    """The installed client's max_concurrency default and optional web features."""
    code = (
        "import inspect, json, sendkit_async as s\n"
        "p = inspect.signature(s.AsyncSendKit).parameters\n"
        "print(json.dumps({'default': p['max_concurrency'].default,"
        " 'coalesce': 'coalesce' in p, 'cache': 'cache' in p}))\n"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True
    )
    facts: dict[str, Any] = json.loads(out.stdout)
    return facts


@contextmanager
def web_app(framework: str, sim_url: str, *options: str) -> Iterator[str]:
    """An example app in its own process, talking to ``sim_url``; yields its URL."""
    cmd = [sys.executable, str(BENCH / "_webapp_server.py"), framework, "--base-url", sim_url]
    env = {**child_env(), "SENDKIT_API_KEY": API_KEY}
    proc = subprocess.Popen(  # noqa: S603 - our own script
        [*cmd, *options], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if match is None:
            raise RuntimeError(f"{framework} app {options} did not start: {line!r}")
        url = match.group(1)
        _wait_ready(url)
        yield url
    finally:
        stop(proc, grace=20.0)


def _wait_ready(url: str) -> None:
    import urllib.error
    import urllib.request

    for _ in range(200):
        try:
            with urllib.request.urlopen(url + "/nothing-here", timeout=2):  # noqa: S310
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} never answered")


def load(url: str, ids: list[str], requests: int, concurrency: int, **flags: Any) -> dict[str, Any]:
    """Run the load generator against ``url``; its JSON report."""
    with ids_file(ids) as path:
        cmd = [sys.executable, str(BENCH / "_webload.py"), url, str(path)]
        cmd += ["--requests", str(requests), "--concurrency", str(concurrency)]
        if flags.get("give_up"):
            cmd += ["--give-up", str(flags["give_up"])]
        if flags.get("distinct"):
            cmd.append("--distinct")
        out = subprocess.run(  # noqa: S603 - our own script
            cmd, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=600
        )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def quiet_total(sim: Any, settle: float = 1.5, guard: float = 60.0) -> int:
    """The simulator's request count once nothing new arrived for ``settle`` seconds."""
    end = time.monotonic() + guard
    last, since = -1, time.monotonic()
    while time.monotonic() < end:
        total = int(sim.stats()["requests_total"])
        if total != last:
            last, since = total, time.monotonic()
        elif time.monotonic() - since >= settle:
            break
        time.sleep(0.1)
    return last


def fresh(sim: Any) -> None:
    """Stats to zero, and a full bucket again (the simulator's window is one second)."""
    time.sleep(1.1)
    sim.reset()


def errors_of(report: dict[str, Any]) -> int:
    return sum(n for status, n in report["statuses"].items() if status != "200")


def concurrency_section(quick: bool, facts: dict[str, Any]) -> Section:
    n = 400 if quick else 2000
    rows = []
    with simulator(*UNLIMITED) as sim:
        ids = sim.ids()[:n]
        for framework in ("aiohttp", "fastapi"):
            for cap in sorted({OLD_DEFAULT, 64, 100, facts["default"]}):
                fresh(sim)
                flags = ("--max-concurrency", str(cap), "--retry", "default")
                with web_app(framework, sim.url, *flags) as url:
                    r = load(url, ids, n, 200, distinct=True)
                seen = sim.stats()
                rows.append(
                    [
                        framework,
                        cap,
                        r["rps"],
                        r["p50_ms"],
                        r["p99_ms"],
                        errors_of(r),
                        seen["max_concurrency"],
                    ]
                )
    return {
        "title": "Web app throughput by max_concurrency (50 ms upstream latency, no limit)",
        "about": (
            f"{n:,} requests for distinct campaigns at concurrency 200 through each example "
            "app, its client with the default RetryPolicy (no queueing bound, so nothing "
            "fails for waiting); the simulator adds 50 ms to every answer and has no limit."
        ),
        "columns": [
            "app",
            "max_concurrency",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "upstream max in flight",
        ],
        "rows": rows,
    }


def figure_section(quick: bool, facts: dict[str, Any]) -> Section:
    n, hot = (400, 100) if quick else (2000, 100)
    modes: list[tuple[str, list[str]]] = [("without", [])]
    if facts["coalesce"]:
        modes[0] = ("without", ["--coalesce", "off"])
    if facts["coalesce"] and facts["cache"]:
        modes.append(("coalescing + 30 s cache", ["--coalesce", "on", "--cache-ttl", "30"]))
    rows = []
    with simulator(*LIMITED) as sim:
        ids = sim.ids()[:hot]
        for cap in sorted({OLD_DEFAULT, facts["default"]}):
            for label, flags in modes:
                fresh(sim)
                with web_app("fastapi", sim.url, "--max-concurrency", str(cap), *flags) as url:
                    r = load(url, ids, n, 100)
                    upstream = quiet_total(sim, settle=0.5)
                s = r["statuses"]
                rows.append(
                    [
                        cap,
                        label,
                        r["p50_ms"],
                        r["p99_ms"],
                        s.get("200", 0),
                        s.get("503", 0),
                        errors_of(r) - s.get("503", 0),
                        upstream,
                        r["wall_s"],
                    ]
                )
    notes = []
    if len(modes) == 1:
        notes.append(
            "The installed client has no `coalesce=`/`cache=` options: the rows with "
            "coalescing and a cache are not measured by this run."
        )
    return {
        "title": "The FastAPI example under load, upstream limited to 50 requests/s",
        "about": (
            f"{n:,} requests at concurrency 100 over {hot} campaign ids (seeded uniform "
            "draws), load generated in another process; the app's calls use the example's "
            "WEB_RETRY (deadline 5 s, max_queue 2 s, max_wait 2 s): a call that would queue "
            "longer is a 503 with Retry-After. Latency is over every request, errors included."
        ),
        "columns": [
            "max_concurrency",
            "coalescing/cache",
            "p50 ms",
            "p99 ms",
            "200",
            "503",
            "other errors",
            "upstream requests",
            "wall s",
        ],
        "rows": rows,
        "notes": notes,
    }


def disconnect_section(quick: bool, facts: dict[str, Any]) -> Section:
    n, concurrency = (200, 100) if quick else (500, 100)
    runs = [
        (
            "aiohttp",
            "README app of today: no handler_cancellation, default RetryPolicy",
            ["--no-disconnect", "--retry", "default"],
        ),
        ("aiohttp", "no handler_cancellation, WEB_RETRY", ["--no-disconnect"]),
        ("aiohttp", "handler_cancellation=True, WEB_RETRY (the example)", []),
        ("fastapi", "plain await, WEB_RETRY", ["--no-disconnect"]),
        ("fastapi", "unless_disconnected, WEB_RETRY (the example)", []),
    ]
    if facts["coalesce"]:
        runs = [(f, what, [*flags, "--coalesce", "off"]) for f, what, flags in runs]
    rows = []
    with simulator(*LIMITED) as sim:
        ids = sim.ids()[:n]
        for framework, what, flags in runs:
            fresh(sim)
            with web_app(framework, sim.url, *flags) as url:
                r = load(url, ids, n, concurrency, give_up=1.0, distinct=True)
                upstream = quiet_total(sim)
            s = r["statuses"]
            answered = s.get("200", 0)
            rows.append([framework, what, s.get("gave up", 0), answered, upstream,
                         upstream - answered])  # fmt: skip
    return {
        "title": "Browsers that give up after 1 s (upstream limited to 50 requests/s)",
        "about": (
            f"{n} requests for distinct campaigns, {concurrency} at a time; each browser "
            "closes its connection after 1 s. Upstream requests are counted once the app has "
            "been quiet for 1.5 s; wasted = upstream requests whose answer no browser got."
        ),
        "columns": ["app", "how", "gave up", "answered 200", "upstream requests", "wasted"],
        "rows": rows,
    }


SECTIONS = {
    "concurrency": concurrency_section,
    "figure": figure_section,
    "disconnect": disconnect_section,
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench_webapp.py")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    args = parser.parse_args(argv)
    facts = client_facts()
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)")
    print(
        f"client: max_concurrency default {facts['default']}, coalesce= "
        f"{'yes' if facts['coalesce'] else 'no'}, cache= {'yes' if facts['cache'] else 'no'}\n"
    )
    for name in args.only or list(SECTIONS):
        print(markdown(SECTIONS[name](args.quick, facts)), flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
