"""Shared plumbing of the benchmarks: server and client subprocesses, medians, tables.

The orchestrating process never imports ``sendkit_async``: servers and clients each run in
their own subprocess (``_servers.py``, ``_clients.py``) with this checkout first on
``PYTHONPATH``, so a figure about the client is measured in a process doing nothing else.
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# Tests point this elsewhere so a smoke run leaves the checkout alone.
RESULTS = Path(os.environ.get("SENDKIT_BENCH_RESULTS") or BENCH / "results")
API_KEY = "sk_bench_key"
CLIENTS = ("sendkit_async", "aiohttp", "aiohttp+tenacity")
START_TIMEOUT = 60.0
WORKER_TIMEOUT = 900.0

Row = list[Any]
Section = dict[str, Any]
"""``{"title", "about", "columns", "rows", "notes", "targets"}``; targets are
``{"what", "value", "target", "met"}``."""


def child_env() -> dict[str, str]:
    """The environment of every subprocess: this checkout's package first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("SENDKIT_API_KEY", None)
    env.pop("SENDKIT_BASE_URL", None)
    return env


class Server:
    """A server subprocess (``_servers.py``) and its base URL; use as a context manager."""

    def __init__(self, kind: str, *options: str) -> None:
        cmd = [sys.executable, str(BENCH / "_servers.py"), kind, *options]
        self.proc = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
            cmd, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if match is None:
            self.stop()
            raise RuntimeError(f"server {kind} {options} did not start: {line!r}")
        self.url = match.group(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # admin endpoints of the simulator (all skip its limits, faults and stats)
    def _call(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.url + path, method=method)  # noqa: S310 - loopback
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - loopback
            return json.loads(resp.read())

    def reset(self) -> None:
        self._call("/_simulator/reset", "POST")

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._call("/_simulator/stats")
        return stats

    def timeline(self) -> list[tuple[float, int]]:
        return [(float(t), int(s)) for t, s in self._call("/_simulator/timeline")]

    def ids(self) -> list[str]:
        return [str(i) for i in self._call("/_simulator/ids")]


@contextmanager
def simulator(*options: str) -> Iterator[Server]:
    """``_servers.py sim`` with simulator CLI options; stopped (SIGTERM) on exit."""
    server = Server("sim", *options)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def ids_file(ids: Sequence[str]) -> Iterator[Path]:
    """A temporary file of ids, one a line, for client workers."""
    fd, name = tempfile.mkstemp(prefix="sendkit-bench-", suffix=".ids")
    path = Path(name)
    try:
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(ids))
        yield path
    finally:
        path.unlink(missing_ok=True)


def run_client(client: str, url: str, *, ids: Path | None = None, **options: Any) -> dict[str, Any]:
    """Run one client in its own process (``_clients.py``); returns its JSON report.

    ``options`` become ``--name value`` flags (``True`` becomes a bare flag).
    """
    cmd = [sys.executable, str(BENCH / "_clients.py"), "--client", client, "--base-url", url]
    if ids is not None:
        cmd += ["--ids-file", str(ids)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            cmd.append(flag)
        elif value is not None and value is not False:
            cmd += [flag, str(value)]
    done = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        cmd, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=WORKER_TIMEOUT
    )
    if done.returncode != 0:
        raise RuntimeError(f"client {client} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def median_of(runs: Sequence[dict[str, Any]], key: str) -> float:
    return float(statistics.median(float(run[key]) for run in runs))


def versions() -> dict[str, str]:
    """Versions as the client subprocesses see them (this checkout's sendkit_async)."""
    code = (
        "import json, aiohttp, attrs, cattrs, sendkit_async, sys;"
        "from importlib.metadata import version;"
        "print(json.dumps({'sendkit_async': sendkit_async.__version__,"
        " 'sendkit_async_path': sendkit_async.__file__, 'aiohttp': aiohttp.__version__,"
        " 'tenacity': version('tenacity'), 'attrs': attrs.__version__,"
        " 'cattrs': version('cattrs')}))"
    )
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", code], cwd=ROOT, env=child_env(), capture_output=True, text=True
    )
    found: dict[str, str] = json.loads(done.stdout) if done.returncode == 0 else {}
    return found


def machine_info() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        **versions(),
    }


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        if value >= 100:
            return f"{value:.0f}"
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown(section: Section) -> str:
    """One section as markdown: heading, what it measures, table, targets, notes."""
    lines = [f"## {section['title']}", "", section["about"], ""]
    columns: list[str] = section["columns"]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in section["rows"]]
    targets: list[dict[str, Any]] = section.get("targets", [])
    if targets:
        lines += ["", "| target | measured | goal | met |", "|---|---|---|---|"]
        for t in targets:
            lines.append(f"| {t['what']} | {fmt(t['value'])} | {t['target']} | {fmt(t['met'])} |")
    for note in section.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"


def machine_markdown(info: dict[str, Any]) -> str:
    return (
        f"Measured {info['date']} on {info['cpus']} CPUs ({info['cpu_model']}), "
        f"{info['system']}, Python {info['python']}, aiohttp {info.get('aiohttp', '?')}, "
        f"tenacity {info.get('tenacity', '?')}, attrs {info.get('attrs', '?')}, "
        f"cattrs {info.get('cattrs', '?')}, sendkit-async {info.get('sendkit_async', '?')}.\n"
    )


def standalone(run: Any, argv: Sequence[str] | None = None) -> None:
    """``main()`` of a benchmark module run on its own: ``--quick``, ``--repeats``."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--repeats", type=int, default=None, help="runs per figure (median)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    for section in run(quick=args.quick, repeats=repeats):
        print(markdown(section))
