"""Many machines: 3 worker processes x 2 keys through the arq job queue.

    python benchmarks/bench_jobs.py [--n 2000] [--rate 200] [--workers 3] [--only sim|nginx]

Each key has its own rate limit R and N campaigns to fetch; the workers share one
Redis budget per key (``RedisRateLimiter``). Servers, all on 127.0.0.1, started and
stopped here, with a throwaway redis-server:

- ``sim``: the SendKit simulator, limiting each key on its own (token bucket, burst
  10, ``X-RateLimit-*`` headers).
- ``nginx``: Debian's nginx ``limit_req`` keyed by ``$http_x_api_key`` (one zone entry
  per key: rate R, burst 20, nodelay; bare 429s, rejected requests are free) in front
  of the simulator without a limit. Skipped with a line if nginx is not installed.

Workers are ``sendkit-async jobs worker`` processes (started and idle before the
clock starts). Figures: wall from the first enqueue to the last chunk recorded,
over the ideal ``max_k N_k / R_k`` (the keys run side by side; ``sum_k N_k / R_k``
would be twice as lenient here), the share of answers that were 429s, and ids
missing or duplicated in the JSON Lines sink.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from _servers import PER_KEY, start_nginx, start_redis, stop  # noqa: E402

from sendkit_async.jobs import enqueue_run, read_jsonl_run, wait_for_run  # noqa: E402

KEYS = {"alpha": "sk_bench_alpha_0001", "beta": "sk_bench_beta_0002"}


def start_sim(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "_servers.py", "sim", *args]
    proc = subprocess.Popen(cmd, cwd=HERE, stdout=subprocess.PIPE, text=True)  # noqa: S603
    assert proc.stdout is not None
    found = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline())
    if not found:
        proc.kill()
        raise RuntimeError("simulator did not start")
    return proc, found.group(0)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback
        return json.load(resp)


def one_run(
    front: str, n: int, rate: float, workers: int, redis_url: str, burst: int, concurrency: int
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="sk-jobs-"))
    procs: list[subprocess.Popen[Any]] = []
    sim_args = ["--campaigns", str(n), "--seed", "3"]
    if front == "sim":
        sim_args += ["--rate-limit", str(rate), "--burst", str(burst)]
    sim, sim_url = start_sim(sim_args)
    nginx = None
    try:
        url = sim_url
        if front == "nginx":
            backend = int(sim_url.rsplit(":", 1)[1])
            nginx, url = start_nginx(backend, rate, tmp, key=PER_KEY, log_statuses=True)
        queue = f"bench:{front}:{time.time_ns()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENDKIT_")}
        env.update({f"SENDKIT_KEY_{ref.upper()}": key for ref, key in KEYS.items()})
        env.update(SENDKIT_BASE_URL=url, SENDKIT_REDIS_URL=redis_url, PYTHONPATH=str(ROOT))
        logs = []
        for w in range(workers):
            log = (tmp / f"w{w}.log").open("wb")
            logs.append(log)
            cmd = [sys.executable, "-m", "sendkit_async", "jobs", "worker", "--sink",
                   f"jsonl:{tmp / 'out'}", "--queue", queue, "--poll-delay", "0.05",
                   "--max-jobs", "10", "--concurrency", str(concurrency)]  # fmt: skip
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=log,  # noqa: S603
                                          stdout=subprocess.DEVNULL))  # fmt: skip
        deadline = time.monotonic() + 60
        while not all("Starting worker" in (tmp / f"w{w}.log").read_text() for w in range(workers)):
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            time.sleep(0.05)
        ids = get_json(f"{sim_url}/_simulator/ids")
        run_id = f"bench-{front}"
        start = time.monotonic()
        state = asyncio.run(_run(ids, redis_url, queue, run_id))
        wall = time.monotonic() - start
        cpu = [_cpu_seconds(p.pid) for p in procs]
        rows = list(read_jsonl_run(tmp / "out", run_id))
        counts = Counter((r["key_ref"], r["id"]) for r in rows)
        if nginx is not None:
            stop(nginx)
            statuses = Counter((tmp / "access.log").read_text().split())
        else:
            statuses = Counter(get_json(f"{sim_url}/_simulator/stats")["by_status"])
        profile = _profile(get_json(f"{sim_url}/_simulator/timeline"))
        answers = sum(statuses.values())
        ideal = n / rate  # both keys have N ids and rate R: max_k N_k / R_k
        return {
            "front": front,
            "n_per_key": n,
            "rate_per_key": rate,
            "workers": workers,
            "concurrency": concurrency,
            "wall_s": round(wall, 2),
            "ideal_s": round(ideal, 2),
            "wall_over_ideal": round(wall / ideal, 3),
            "share_429": round(statuses.get("429", 0) / answers, 4) if answers else 0.0,
            "answers": answers,
            "ok": state.succeeded,
            "failed": state.failed,
            "missing": len(KEYS) * n - len(counts),
            "duplicated": sum(c - 1 for c in counts.values()),
            "worker_cpu_s": [round(c, 2) for c in cpu],
            "backend_per_second": profile,
        }
    finally:
        for proc in procs:
            stop(proc)
        if nginx is not None:
            stop(nginx)
        stop(sim)
        shutil.rmtree(tmp, ignore_errors=True)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _profile(timeline: list[list[float]]) -> list[list[int]]:
    """[answers, 429s] the simulator gave per second (behind nginx: only what it let by)."""
    if not timeline:
        return []
    t0 = timeline[0][0]
    bins = [[0, 0] for _ in range(int(timeline[-1][0] - t0) + 1)]
    for t, status in timeline:
        bins[int(t - t0)][0] += 1
        bins[int(t - t0)][1] += status == 429
    return bins


async def _run(ids: list[str], redis_url: str, queue: str, run_id: str) -> Any:
    await enqueue_run(dict.fromkeys(KEYS, ids), redis_url=redis_url, queue_name=queue,
                      run_id=run_id, chunk_size=100)  # fmt: skip
    return await wait_for_run(run_id, timeout=600, redis_url=redis_url, poll=0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="campaigns per key")
    parser.add_argument("--rate", type=float, default=200.0, help="req/s per key")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16, help="per key per worker")
    parser.add_argument("--burst", type=int, default=10, help="the simulator's bucket (10)")
    parser.add_argument("--only", choices=("sim", "nginx"), action="append")
    args = parser.parse_args()
    fronts = args.only or ["sim", "nginx"]
    if "nginx" in fronts and shutil.which("nginx") is None:
        print("nginx not installed: skipping the nginx scenario")
        fronts.remove("nginx")
    redis, redis_url = start_redis()
    try:
        for front in fronts:
            row = one_run(
                front, args.n, args.rate, args.workers, redis_url, args.burst, args.concurrency
            )
            row["load_average_1m"] = round(os.getloadavg()[0], 1)
            print(json.dumps(row), flush=True)
    finally:
        if redis is not None:
            stop(redis)
    return 0


if __name__ == "__main__":
    sys.exit(main())
