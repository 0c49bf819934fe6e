"""``sendkit-async jobs enqueue|worker|status``: the arq job queue from a shell.

The parser is built without importing arq; the commands import it when they run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

__all__ = ["add_jobs_parser", "run_jobs"]

SINKS = ("jsonl", "parquet")


def add_jobs_parser(commands: Any) -> None:
    """Add ``jobs`` and its three subcommands to the top-level subparsers."""
    jobs = commands.add_parser("jobs", help="many machines: an arq job queue (extra `jobs`)")
    sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="JOBS_COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--redis-url", help="default $SENDKIT_REDIS_URL or redis://127.0.0.1:6379/0")
        p.add_argument("--queue", default=None, help="arq queue name (default sendkit:jobs:queue)")
        p.add_argument("--redis-timeout", type=float, default=10.0, metavar="SECONDS",
                       help="bound of each Redis call (10)")  # fmt: skip

    enqueue = sub.add_parser("enqueue", help="list workspaces and enqueue their chunks")
    enqueue.add_argument("--key-ref", action="append", required=True, metavar="NAME",
                         help="a key reference (repeat for more keys); its key is read from "
                         "SENDKIT_KEY_<NAME> here and on every worker")  # fmt: skip
    which = enqueue.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every campaign of each workspace")
    which.add_argument("--ids-file", metavar="FILE", help="campaign ids, one a line (one key)")
    enqueue.add_argument("--status", help="with --all: only campaigns with this status")
    enqueue.add_argument("--chunk-size", type=int, default=100, help="ids per job (100)")
    enqueue.add_argument("--run-id", help="name the run (the same run enqueued again adds nothing)")
    enqueue.add_argument("--from", dest="from_", metavar="DATE", help="ISO date or date-time")
    enqueue.add_argument("--to", metavar="DATE", help="ISO date or date-time")
    enqueue.add_argument("--base-url", help="API base URL for the listing")
    enqueue.add_argument("--wait", type=float, metavar="SECONDS", help="then wait for the run")
    common(enqueue)

    worker = sub.add_parser("worker", help="run a worker until SIGTERM or Ctrl-C")
    worker.add_argument("--sink", required=True, metavar="KIND:DIR",
                        help="jsonl:DIR or parquet:DIR (one file per chunk)")  # fmt: skip
    worker.add_argument("--base-url", help="API base URL (default $SENDKIT_BASE_URL or cloud)")
    worker.add_argument("--max-jobs", type=int, default=10, help="chunks at once (10)")
    worker.add_argument("--concurrency", type=int, default=16, help="requests in flight per key")
    worker.add_argument("--rate", type=float, help="ceiling in req/s per key, all workers")
    worker.add_argument("--max-tries", type=int, default=5, help="runs of a chunk (5)")
    worker.add_argument("--chunk-timeout", type=float, default=600.0, help="seconds per chunk")
    worker.add_argument("--lease", type=float, default=10.0,
                        help="a dead worker's chunk is taken again within this (10 s)")  # fmt: skip
    worker.add_argument("--poll-delay", type=float, default=0.5, help="queue poll interval")
    worker.add_argument("--drain", type=int, default=0,
                        help="SIGTERM: seconds to finish chunks (0: requeue)")  # fmt: skip
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    common(worker)

    status = sub.add_parser("status", help="chunks done of a run")
    status.add_argument("run_id", metavar="RUN_ID")
    status.add_argument("--wait", type=float, metavar="SECONDS", help="wait for the run first")
    common(status)


def _sink(text: str) -> Any:
    from ..jobs import JsonLinesSink, ParquetSink

    kind, sep, where = text.partition(":")
    if not sep or kind not in SINKS or not where:
        raise ConfigurationError(f"--sink must be jsonl:DIR or parquet:DIR, got {text!r}")
    return JsonLinesSink(where) if kind == "jsonl" else ParquetSink(where)


def _status_line(state: Any) -> str:
    return json.dumps(
        {"run_id": state.run_id, "chunks": state.chunks, "done": state.done,
         "succeeded": state.succeeded, "failed": state.failed, "complete": state.complete}
    )  # fmt: skip


def run_jobs(args: argparse.Namespace) -> int:
    """Run one ``jobs`` subcommand; returns the exit status.

    Raises:
        ConfigurationError: bad options; ``SendKitError`` from the listing or the wait.
        MissingDependencyError: arq (the ``jobs`` extra) is not installed.
    """
    from .._frames import require_extra

    require_extra("arq", "jobs", "sendkit-async jobs")
    from .. import jobs

    queue = args.queue or jobs.DEFAULT_QUEUE
    if args.jobs_command == "worker":
        settings = jobs.worker_settings(
            sink=_sink(args.sink), redis_url=args.redis_url, redis_timeout=args.redis_timeout,
            base_url=args.base_url,
            queue_name=queue, max_jobs=args.max_jobs, concurrency=args.concurrency,
            rate=args.rate, max_tries=args.max_tries, chunk_timeout=args.chunk_timeout,
            lease=args.lease, poll_delay=args.poll_delay, drain=args.drain, burst=args.burst,
        )  # fmt: skip
        import logging.config

        from arq.logs import default_log_config

        logging.config.dictConfig(default_log_config(verbose=args.debug))
        jobs.run_worker(settings)
        return 0
    if args.jobs_command == "status":
        if args.wait is not None:
            state = asyncio.run(
                jobs.wait_for_run(
                    args.run_id,
                    timeout=args.wait,
                    redis_url=args.redis_url,
                    redis_timeout=args.redis_timeout,
                )
            )
        else:
            state = asyncio.run(
                jobs.run_status(
                    args.run_id, redis_url=args.redis_url, redis_timeout=args.redis_timeout
                )
            )
        print(_status_line(state))
        return 0
    return asyncio.run(_enqueue(args, queue))


async def _enqueue(args: argparse.Namespace, queue: str) -> int:
    from .. import jobs

    sources: dict[str, Any]
    if args.ids_file:
        if len(args.key_ref) != 1:
            raise ConfigurationError("--ids-file goes with exactly one --key-ref")
        text = await asyncio.to_thread(Path(args.ids_file).read_text, encoding="utf-8")
        sources = {args.key_ref[0]: [line.strip() for line in text.splitlines() if line.strip()]}
    else:
        sources = dict.fromkeys(args.key_ref)
    info = await jobs.enqueue_run(
        sources, redis_url=args.redis_url, redis_timeout=args.redis_timeout,
        queue_name=queue, run_id=args.run_id,
        chunk_size=args.chunk_size, status=args.status, from_=args.from_, to=args.to,
        base_url=args.base_url,
    )  # fmt: skip
    print(json.dumps({"run_id": info.run_id, "chunks": info.chunks, "ids": info.ids,
                      "ids_by_key": dict(info.ids_by_key),
                      "already_queued": info.already_queued}), flush=True)  # fmt: skip
    if args.wait is not None:
        state = await jobs.wait_for_run(
            info.run_id, timeout=args.wait, redis_url=args.redis_url,
            redis_timeout=args.redis_timeout,
        )  # fmt: skip
        print(_status_line(state))
        return 0 if state.failed == 0 else 1
    return 0
