"""`origin-agent worker --broker URL`: a Celery worker for fleet runs (``--executor celery``).

It is a plain ``celery worker`` of the app :mod:`agent.fleet.celery_app` underneath, so
Celery's own tooling (``celery -A agent.fleet.celery_app inspect ...``, Flower) works on it.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from agent.commands import options
from agent.commands.argtypes import int_range

CONCURRENCY = int_range(1, 256)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "worker",
        help="run fleet tasks (--executor celery) sent through a Redis broker",
        description="Start a Celery worker that runs slices of fleet runs: the same plan, "
        "inventory and issuer files must be at the same paths as on the controller (a "
        "mismatch is refused). Private keys are made here and never cross the broker.",
    )
    options.add_broker(parser)
    parser.add_argument(
        "-Q",
        "--queue",
        action="append",
        default=[],
        metavar="QUEUE",
        help="take tasks of this queue (hosts' worker_queue var; repeatable; default origin-agent)",
    )
    parser.add_argument(
        "-c",
        "--concurrency",
        type=CONCURRENCY,
        default=2,
        metavar="N",
        help="tasks run at once (processes; default 2)",
    )
    options.add_task_timeout(parser)
    options.add_state_dir(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the worker until it is stopped (SIGTERM: finish the current tasks first)."""
    from agent.fleet.app import broker_from, make_app
    from agent.fleet.payload import DEFAULT_QUEUE

    broker = broker_from(args.broker)
    if args.state_dir:
        os.environ["ORIGIN_AGENT_STATE_DIR"] = os.path.abspath(args.state_dir)
    os.environ["ORIGIN_AGENT_BROKER"] = broker  # for the pool's processes, never printed
    app = make_app(broker, args.task_timeout)
    queues = ",".join(args.queue or [DEFAULT_QUEUE])
    argv = [
        "worker",
        "--queues",
        queues,
        "--concurrency",
        str(args.concurrency),
        "--hostname",
        f"origin-agent-{os.getpid()}@%h",
        "--loglevel",
        "INFO" if args.verbose else "WARNING",
        "--without-gossip",
        "--without-mingle",
    ]
    app.worker_main(argv)
    return 0
