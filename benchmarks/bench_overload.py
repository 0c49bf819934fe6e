"""Overload: sendkit_async beside a hand-written aiohttp + tenacity loop, against limiters
and faults nobody here wrote the client for.

    python benchmarks/bench_overload.py [--n 2000] [--rate 100] [--only NAME ...] [--out FILE]

Servers, all on 127.0.0.1, started and stopped here:

- ``nginx``: Debian's nginx ``limit_req`` (rate R, burst 20 or, in ``nginx-b50-*``, 50;
  nodelay; rejected requests are free) in front of ``_gateway.py``; 429s bare or with
  ``Retry-After``. Skipped with a line if nginx is not installed.
- ``gateway``: ``_gateway.py``'s sliding one-second window that counts rejected requests
  too, plus 503 faults, resets and outage windows.
- ``*-lat50``: the gateway's successful answers take 25-75 ms (a backend's time);
  refusals, its own and nginx's, stay immediate.
- ``*-jit50``: every request reaches the gateway's window 0-50 ms after it was sent
  (the network on the way in): requests sent evenly arrive bunched.

Each scenario runs each client in its own process against fresh servers, fetching N
distinct ids at concurrency 50. Figures: wall / ideal (ideal = N / R), the share of
answers that were 429s, ids lost; for outages the attempts per second during the outage
and how long after it the client was back at 90 % of its earlier rate of 200s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from _servers import start_nginx, start_redis, stop

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLIENTS = ("aiohttp+tenacity", "sendkit_async")

# name: (front, gateway options, nginx Retry-After or None)
SCENARIOS: dict[str, tuple[str, list[str], int | None]] = {
    "nginx-free": ("nginx", [], None),
    "nginx-503-ra1": ("nginx", ["--fault-rate", "0.05", "--fault-retry-after", "1"], None),
    "nginx-ra1": ("nginx", [], 1),
    "nginx-ra2": ("nginx", [], 2),
    "nginx-b50-ra1": ("nginx", [], 1),
    "nginx-b50-ra2": ("nginx", [], 2),
    "gw-bare": ("gateway", ["--window", "sliding"], None),
    "gw-ra1": ("gateway", ["--window", "sliding", "--retry-after", "1"], None),
    "gw-ra2": ("gateway", ["--window", "sliding", "--retry-after", "2"], None),
    "gw-ra2-503": (
        "gateway",
        [
            "--window",
            "sliding",
            "--retry-after",
            "2",
            "--fault-rate",
            "0.03",
            "--fault-retry-after",
            "2",
        ],
        None,
    ),
    "gw-bare-lat50": ("gateway", ["--window", "sliding", "--latency", "50"], None),
    "gw-ra2-lat50": (
        "gateway",
        ["--window", "sliding", "--retry-after", "2", "--latency", "50"],
        None,
    ),
    "nginx-ra1-lat50": ("nginx", ["--latency", "50"], 1),
    "gw-bare-jit50": ("gateway", ["--window", "sliding", "--jitter", "50"], None),
    "gw-ra1-jit50": (
        "gateway",
        ["--window", "sliding", "--retry-after", "1", "--jitter", "50"],
        None,
    ),
    "gw-ra2-jit50": (
        "gateway",
        ["--window", "sliding", "--retry-after", "2", "--jitter", "50"],
        None,
    ),
    "open-clean": ("open", [], None),
    "open-faults": ("open", ["--fault-rate", "0.05", "--reset-rate", "0.01"], None),
    "outage-503": ("gateway", ["--window", "sliding", "--outage", "5:5:503"], None),
    "outage-429ra0": ("gateway", ["--window", "sliding", "--outage", "5:5:429ra0"], None),
    "outage-refused": ("gateway", ["--window", "sliding", "--outage", "5:5:refused"], None),
}
NGINX_BURST = {"nginx-b50-ra1": 50, "nginx-b50-ra2": 50}  # where not 20


def start(cmd: list[str], ready: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(  # noqa: S603 - our own scripts, fixed arguments
        cmd, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if ready not in line:
        proc.kill()
        raise RuntimeError(f"{cmd[1]} did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[-1].strip()


def one_run(name: str, client: str, n: int, rate: float, processes: int) -> dict[str, Any]:
    front, gw_args, nginx_ra = SCENARIOS[name]
    gw_cmd = [sys.executable, "_gateway.py", "--limit", str(rate), *gw_args]
    gw, gw_url = start(gw_cmd, "listening")
    nginx = None
    tmp = tempfile.mkdtemp(prefix="sk-nginx-")
    try:
        url = gw_url
        if front == "nginx":
            backend = int(gw_url.rsplit(":", 1)[1])
            burst = NGINX_BURST.get(name, 20)
            nginx, url = start_nginx(backend, rate, Path(tmp), retry_after=nginx_ra, burst=burst)
        ids = [f"{i:024x}" for i in range(n)]
        ids_file = Path(tmp) / "ids.txt"
        reports = []
        procs = []
        share = -(-n // processes)
        for p in range(processes):
            chunk = Path(tmp) / f"ids{p}.txt"
            chunk.write_text("\n".join(ids[p * share : (p + 1) * share]))
            cmd = [sys.executable, "_clients.py", "--client", client, "--base-url", url,
                   "--ids-file", str(chunk), "--concurrency", "50", "--timeline"]  # fmt: skip
            if processes > 1 and client == "sendkit_async":
                cmd += ["--redis-url", REDIS_URL[0]]
            child = subprocess.Popen(cmd, cwd=HERE, stdout=subprocess.PIPE, text=True)  # noqa: S603
            procs.append(child)
        del ids_file
        for proc in procs:
            out, _ = proc.communicate(timeout=600)
            reports.append(json.loads(out.strip().splitlines()[-1]))
        row = summarize(name, client, n, rate, reports)
        timeline = gateway_timeline(gw_url)
        row["per_second"] = gateway_profile(timeline)
        if name.startswith("outage"):
            row["back_after_s"] = recovery(timeline)
        return row
    finally:
        if nginx is not None:
            stop(nginx)
        stop(gw)
        shutil.rmtree(tmp, ignore_errors=True)


def gateway_timeline(url: str) -> list[list[float]]:
    """Every answer the gateway gave: [seconds from the first request, status]."""
    for _ in range(150):  # a gateway in a refused-connections outage listens again after it
        try:
            with urllib.request.urlopen(url + "/_gateway/stats", timeout=30) as resp:  # noqa: S310
                return list(json.loads(resp.read())["timeline"])
        except OSError:
            time.sleep(0.1)
    return []


def gateway_profile(timeline: list[list[float]]) -> dict[str, list[int]]:
    """Answers per second of the run as the gateway saw them: 200s and the rest."""
    seconds = int(max((t for t, _ in timeline), default=0)) + 1
    ok, other = [0] * seconds, [0] * seconds
    for t, status in timeline:
        (ok if status == 200 else other)[int(t)] += 1
    return {"ok": ok, "other": other}


def recovery(timeline: list[list[float]], at: float = 5.0, length: float = 5.0) -> float | None:
    """Seconds after the outage until 200s come at 90 % of their rate before it (0.25 s bins)."""
    step = 0.25
    bins: dict[int, int] = {}
    for t, status in timeline:
        if status == 200:
            bins[int(t / step)] = bins.get(int(t / step), 0) + 1
    before = sorted(bins.get(i, 0) for i in range(int((at - 2.0) / step), int(at / step)))
    if not before:
        return None
    usual = before[len(before) // 2]
    end = at + length
    last = int(max((t for t, _ in timeline), default=0) / step)
    for i in range(int(end / step), last):
        if bins.get(i, 0) >= 0.9 * usual:
            return round((i + 1) * step - end, 2)  # by the end of the first full bin
    return None


def summarize(
    name: str, client: str, n: int, rate: float, reports: list[dict[str, Any]]
) -> dict[str, Any]:
    wall = max(r["wall"] for r in reports)
    ok = sum(r["ok"] for r in reports)
    statuses: dict[str, int] = {}
    for r in reports:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    answers = sum(statuses.values())
    front = SCENARIOS[name][0]
    row: dict[str, Any] = {
        "scenario": name,
        "client": client,
        "processes": len(reports),
        "wall": round(wall, 2),
        "ideal": None if front == "open" else n / rate,
        "x_ideal": None if front == "open" else round(wall / (n / rate), 3),
        "share_429": round(statuses.get("429", 0) / max(1, answers), 4),
        "lost": n - ok,
        "attempts": answers,
        "statuses": statuses,
    }
    if name.startswith("outage"):
        row.update(outage_figures(reports[0]["samples"]))
    return row


def outage_figures(
    samples: list[list[float]], at: float = 5.0, length: float = 5.0
) -> dict[str, Any]:
    """Attempts per second the client made during the outage (its own count)."""

    def count(t0: float, t1: float, col: int) -> float:
        before = [s for s in samples if s[0] <= t0]
        after = [s for s in samples if s[0] <= t1]
        if not before or not after:
            return 0.0
        return after[-1][col] - before[-1][col]

    during = count(at + 0.5, at + length, 1) / (length - 0.5)
    return {"outage_attempts_per_s": round(during, 1)}


REDIS_URL = [""]  # main() sets it with --processes > 1 (SENDKIT_BENCH_REDIS_URL or our own)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--only", nargs="*", default=None, help="scenario names")
    parser.add_argument("--clients", nargs="*", default=list(CLIENTS))
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--out", default=None, help="append JSON lines here")
    args = parser.parse_args()
    names = args.only or list(SCENARIOS)
    if shutil.which("nginx") is None:
        print("nginx not installed (apt-get install nginx-light): skipping nginx scenarios")
        names = [s for s in names if SCENARIOS[s][0] != "nginx"]
    redis = None
    if args.processes > 1:
        redis, REDIS_URL[0] = start_redis()
    try:
        run_all(args, names)
    finally:
        if redis is not None:
            stop(redis)
    return 0


def run_all(args: argparse.Namespace, names: list[str]) -> None:
    for name in names:
        for client in args.clients:
            n = args.n * (5 if SCENARIOS[name][0] == "open" else 1)
            row = one_run(name, client, n, args.rate, args.processes)
            line = json.dumps({k: v for k, v in row.items() if k not in ("statuses", "per_second")})
            print(line, flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    sys.exit(main())
