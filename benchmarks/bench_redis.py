"""Four processes, one API key: a rate limit shared through Redis vs per-process limiters.

Starts the simulator (``python -m sendkit_async.simulator``, x-ratelimit headers) and,
unless ``--redis-url`` is given, a throwaway ``redis-server`` on loopback. Then, twice
(shared ``RedisRateLimiter``, then only the client's own in-memory limiter), starts
``--workers`` processes that each fetch ``N`` campaigns with ``gather_campaigns`` using the
same key, and prints aggregate wall time against the ideal ``workers * N / rate`` and the
share of 429s the simulator answered.

    python benchmarks/bench_redis.py            # N = 250 per worker
    python benchmarks/bench_redis.py --quick    # N = 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk_bench_shared_key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("no redis-server on PATH: install it or pass --redis-url")
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("redis-server did not start")
        time.sleep(0.05)


def start_simulator(args: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(  # noqa: S603
        [
            sys.executable, "-m", "sendkit_async.simulator", "--port", "0",
            "--campaigns", "4000", "--rate-limit", str(args.rate), "--burst", str(args.burst),
            "--rate-limit-headers", "x-ratelimit",
        ],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"listening on (\S+)", line)
    if match is None:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return proc, match.group(1)


async def list_ids(base: str, count: int) -> list[str]:
    """Campaign ids via the API, waiting out 429s (before the measured runs)."""
    ids: list[str] = []
    cursor = None
    async with aiohttp.ClientSession(headers={"X-Api-Key": KEY}) as session:
        while len(ids) < count:
            params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            async with session.get(f"{base}/v1/campaigns", params=params) as resp:
                if resp.status == 429:
                    await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                    continue
                body = await resp.json()
            ids.extend(item["_id"] for item in body["data"])
            cursor = body["pagination"]["nextCursor"]
    return ids[:count]


async def admin(base: str, method: str, path: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{base}/_simulator/{path}") as resp,
    ):
        result: dict[str, Any] = await resp.json()
        return result


# -- one worker process -------------------------------------------------------------------


async def worker(base: str, redis_url: str, prefix: str, ids: list[str]) -> dict[str, Any]:
    from sendkit_async import AsyncSendKit, RateBudget

    limiter: Any = None
    if redis_url:
        from sendkit_async.redis_limiter import RedisRateLimiter

        limiter = RedisRateLimiter.from_url(redis_url, api_key=KEY, base_url=base, prefix=prefix)
    budget: RateBudget | None = limiter
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"
    try:
        async with AsyncSendKit(KEY, base_url=base, rate_limiter=budget) as client:
            results = await client.gather_campaigns(ids, return_exceptions=True)
            stats = client.stats
    finally:
        if limiter is not None:
            await limiter.aclose()
    failed = sum(1 for r in results if isinstance(r, Exception))
    return {"ok": len(results) - failed, "failed": failed, "requests": stats.requests}


async def run_mode(
    args: argparse.Namespace, base: str, redis_url: str, ids: list[str]
) -> dict[str, Any]:
    await asyncio.sleep(args.burst / args.rate + 1.0)  # let the server's bucket refill
    await admin(base, "POST", "reset")
    prefix = f"bench:{uuid.uuid4().hex[:8]}"  # a fresh shared budget: nothing learned yet
    n = args.n
    procs = []
    for w in range(args.workers):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--worker", base, redis_url, prefix,
            ",".join(ids[w * n : (w + 1) * n]),
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's package first
        )  # fmt: skip
        procs.append(proc)
    for proc in procs:
        assert proc.stdout is not None
        assert (await proc.stdout.readline()).strip() == b"ready"
    start = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    outs = await asyncio.gather(*(proc.communicate() for proc in procs))
    wall = time.perf_counter() - start
    reports = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outs]
    stats = await admin(base, "GET", "stats")
    by_status = {int(k): v for k, v in stats["by_status"].items()}
    total = sum(by_status.values())
    return {
        "wall": wall,
        "ideal": args.workers * n / args.rate,
        "requests": total,
        "r429": by_status.get(429, 0),
        "ok": sum(r["ok"] for r in reports),
        "failed": sum(r["failed"] for r in reports),
    }


async def run(args: argparse.Namespace) -> None:
    redis_proc = None
    redis_url = args.redis_url
    if not redis_url:
        redis_proc, redis_url = start_redis()
    sim, base = start_simulator(args)
    try:
        ids = await list_ids(base, args.workers * args.n)
        rows = {
            "shared (Redis)": await run_mode(args, base, redis_url, ids),
            "local only": await run_mode(args, base, "", ids),
        }
    finally:
        sim.terminate()
        sim.wait(10)
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
    print(
        f"{args.workers} workers x {args.n} campaigns, simulator rate {args.rate}/s burst "
        f"{args.burst}, ideal {args.workers * args.n / args.rate:.1f} s"
    )
    header = f"{'limiter':<16}{'wall s':>8}{'wall/ideal':>12}{'requests':>10}{'429s':>7}"
    print(header + f"{'429 %':>8}{'ok':>7}{'failed':>8}")
    for name, r in rows.items():
        share = r["r429"] / r["requests"] if r["requests"] else 0.0
        print(
            f"{name:<16}{r['wall']:>8.2f}{r['wall'] / r['ideal']:>12.3f}{r['requests']:>10}"
            f"{r['r429']:>7}{share:>8.1%}{r['ok']:>7}{r['failed']:>8}"
        )
    print("targets: wall/ideal <= 1.15, 429 share <= 2 % (shared)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        base, redis_url, prefix, ids = sys.argv[2:6]
        print(json.dumps(asyncio.run(worker(base, redis_url, prefix, ids.split(",")))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 50 per worker")
    parser.add_argument("--n", type=int, default=None, help="campaigns per worker (250)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=50.0, help="simulator requests/s")
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--redis-url", default="", help="default: start a redis-server")
    args = parser.parse_args()
    args.n = args.n or (50 if args.quick else 250)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
