"""Options several commands share, each defined once, and what they set up.

A flag means the same thing (name, type, default, help) in every command that takes it; a
command adds the ones it needs from here and keeps only its own flags to itself. The plan
runners (``run``, ``rotate``, ``bootstrap``) take :func:`add_plan_run_options` whole.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509

from agent.commands.argtypes import int_range, seconds
from agent.errors import UsageError
from agent.inventory import Inventory, load

DEFAULT_FORKS = 20
MAX_FORKS = 1000
MAX_TRUST_BYTES = 4 * 1024 * 1024
FORKS = int_range(1, MAX_FORKS)  # one type object: the same option in every command
WAIT_SECONDS = int_range(0, 86400)  # --wait: for another run's lock
RENEW_BEFORE_DAYS = int_range(0, 3650)
FAIL_WITHIN_DAYS = int_range(0, 36500)
DEFAULT_TIMEOUT = 5.0
STATE_DIR_HELP = (
    "local state: issued certificates, ACME account, runs "
    "(default $ORIGIN_AGENT_STATE_DIR or ~/.local/state/origin-agent)"
)


def add_inventory(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """``-i/--inventory`` (repeatable). When not ``required`` the command itself says what is
    missing (its own one-line error with a hint)."""
    parser.add_argument(
        "-i",
        "--inventory",
        action="append",
        required=required,
        default=[],
        metavar="INVENTORY",
        help="inventory file (YAML or INI), directory, or 'host1,host2,' list; repeatable",
    )


def add_limit(parser: argparse.ArgumentParser, help: str = "only hosts matching PATTERN") -> None:
    """``-l/--limit PATTERN``."""
    parser.add_argument("-l", "--limit", metavar="PATTERN", help=help)


def add_check(parser: argparse.ArgumentParser) -> None:
    """``-C/--check``: change nothing anywhere."""
    parser.add_argument(
        "-C",
        "--check",
        action="store_true",
        help="change nothing anywhere; report what would change",
    )


def add_forks(parser: argparse.ArgumentParser) -> None:
    """``-f/--forks N``: hosts worked on (or probed) at once."""
    parser.add_argument(
        "-f",
        "--forks",
        type=FORKS,
        default=DEFAULT_FORKS,
        metavar="N",
        help=f"hosts worked on at once (default {DEFAULT_FORKS})",
    )


def add_timeout(parser: argparse.ArgumentParser) -> None:
    """``--timeout S``: for each TLS handshake."""
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds per TLS handshake (default {DEFAULT_TIMEOUT:g})",
    )


def add_state_dir(parser: argparse.ArgumentParser) -> None:
    """``--state-dir DIR``: the local state store."""
    parser.add_argument("--state-dir", metavar="DIR", help=STATE_DIR_HELP)


def add_trust(parser: argparse.ArgumentParser) -> None:
    """``--trust PEM`` (repeatable): extra trust anchors for judging what origins serve."""
    parser.add_argument(
        "--trust",
        type=Path,
        action="append",
        default=[],
        metavar="PEM",
        help="extra trust anchors (CA bundle), besides the edge's own (public CAs as certifi "
        "ships them, Cloudflare's Origin CA) and each host's issuer roots",
    )


def add_plan_run_options(parser: argparse.ArgumentParser) -> None:
    """Every option of a command that runs a plan (run, rotate, bootstrap)."""
    add_inventory(parser, required=True)
    add_limit(parser)
    add_check(parser)
    parser.add_argument(
        "-D",
        "--diff",
        action="store_true",
        help="show unified diffs of files (secret files redacted)",
    )
    add_forks(parser)
    parser.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="VARS",
        help="key=value, YAML/JSON mapping, or @file.yml (repeatable)",
    )
    parser.add_argument(
        "--json", action="store_true", help="JSON lines on stdout, one object per event"
    )
    parser.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="record unknown SSH host keys (a changed key is always refused)",
    )
    add_state_dir(parser)
    add_wait(parser)
    add_executor(parser)


HOSTS_PER_TASK = int_range(1, 1000)


def add_executor(parser: argparse.ArgumentParser) -> None:
    """``--executor local|celery`` and the fleet's options (agent.fleet)."""
    group = parser.add_argument_group("fleet (--executor celery: Celery workers on Redis)")
    group.add_argument(
        "--executor",
        choices=("local", "celery"),
        default="local",
        help="who runs a batch's hosts: threads here (local, the default) or Celery workers "
        "(celery; start them with 'origin-agent worker')",
    )
    add_broker(group)
    add_task_timeout(group)
    group.add_argument(
        "--hosts-per-task",
        type=HOSTS_PER_TASK,
        default=10,
        metavar="N",
        help="hosts per task (default 10; a task should take seconds, not milliseconds)",
    )
    group.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="finish an interrupted fleet run from what the result backend holds (the same "
        "command and files; the run id is printed when it starts)",
    )


def add_broker(parser: Any) -> None:
    """``--broker URL``: the fleet's Redis (broker and result backend)."""
    parser.add_argument(
        "--broker",
        metavar="URL",
        help="Redis broker and result backend, redis://[:PASSWORD@]HOST:PORT/DB or rediss:// "
        "(default $ORIGIN_AGENT_BROKER; the password is never printed)",
    )


def add_task_timeout(parser: Any) -> None:
    """``--task-timeout S``: the longest one fleet task may run."""
    parser.add_argument(
        "--task-timeout",
        type=seconds,
        default=600.0,
        metavar="S",
        help="longest a worker may spend on one task (default 600; the same on controller and "
        "workers); the broker redelivers a task a dead worker held after S plus max(10 s, 10%%)",
    )


def add_wait(parser: argparse.ArgumentParser) -> None:
    """``--wait SECONDS``: for another run of the same inventory and state store."""
    parser.add_argument(
        "--wait",
        type=WAIT_SECONDS,
        default=None,
        metavar="SECONDS",
        help="if another run holds this inventory and state store, wait up to SECONDS for it "
        "(default: exit 5 at once, naming it; a timer's run waits 3600)",
    )


def add_renew_before(parser: argparse.ArgumentParser) -> None:
    """``--renew-before DAYS``: the renewal policy's fixed margin instead of its default."""
    parser.add_argument(
        "--renew-before",
        type=RENEW_BEFORE_DAYS,
        default=None,
        metavar="DAYS",
        help="renew certificates expiring within DAYS, 0 at expiry (default: when two thirds "
        "of the lifetime are used)",
    )


def add_fail_within(parser: argparse.ArgumentParser) -> None:
    """``--fail-within DAYS``: a certificate expiring that soon is a problem."""
    parser.add_argument(
        "--fail-within",
        type=FAIL_WITHIN_DAYS,
        default=None,
        metavar="DAYS",
        help="a certificate expiring within DAYS (or none served) is a problem: status exits 4, "
        "--notify alerts on it (rotate: probed after the run; a timer: 14 by default)",
    )


def add_metrics_and_alerts(parser: argparse.ArgumentParser) -> None:
    """``--prometheus FILE`` and ``--notify URL`` (repeatable)."""
    parser.add_argument(
        "--prometheus",
        type=Path,
        metavar="FILE",
        help="write metrics (Prometheus text format, node_exporter textfile: *.prom) atomically",
    )
    parser.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="URL",
        help="post one JSON message (Slack/Mattermost 'text' plus fields) when a run needs a "
        "human (repeatable); never changes the exit code",
    )


def require_inventory(args: argparse.Namespace) -> None:
    """For commands whose ``-i`` is optional in the parser.

    Raises:
        UsageError: no ``-i`` was given.
    """
    if not args.inventory:
        raise UsageError(
            f"{args.command} needs an inventory", where=args.command, hint="use -i FILE"
        )


def load_inventory(sources: Sequence[str]) -> Inventory:
    """The inventory named by the ``-i`` options.

    Raises:
        InventoryError: see :func:`agent.inventory.load`.
    """
    return load(list(sources))


def configure_services(inventory: Sequence[str], state_dir: str | None) -> None:
    """Point the run-wide services at the state store (``--state-dir``) and resolve relative
    paths in issuer configs (a CA dir, a token file) from the first inventory's directory."""
    from agent.modules.tls import services

    if state_dir is not None and os.path.exists(state_dir) and not os.path.isdir(state_dir):
        # silently ignored, a run would record nothing and a later one renew too early
        raise UsageError(f"{state_dir} is not a directory", where="--state-dir")
    first = next((s for s in inventory if os.path.exists(s)), None)
    base = "."
    if first is not None:
        base = str(Path(first).resolve().parent if os.path.isfile(first) else Path(first).resolve())
    services.configure(state_dir=state_dir, base_dir=base)


def trust_text(paths: Sequence[Path]) -> str:
    """The PEM text of every ``--trust`` file, concatenated, each checked to hold certificates.

    Raises:
        UsageError: a file cannot be read, is too large, or holds no PEM certificate (named,
            never echoed).
    """
    text = ""
    for path in paths:
        try:
            data = path.read_bytes()[: MAX_TRUST_BYTES + 1]
        except OSError as err:
            raise UsageError(f"cannot read {path}: {err.strerror}", where="--trust") from err
        try:
            if len(data) > MAX_TRUST_BYTES:
                raise ValueError("too large")
            x509.load_pem_x509_certificates(data)
            text += data.decode("utf-8") + "\n"
        except ValueError:
            raise UsageError(
                f"{path} holds no PEM certificate", where="--trust", hint="give a CA bundle in PEM"
            ) from None
    return text
