"""`origin-agent rotate` and `origin-agent bootstrap`: the bundled plans, run like `run`."""

from __future__ import annotations

import argparse
from typing import Any

from agent.commands import run as run_command
from agent.errors import UsageError
from agent.resources import data_dir

PLANS_DIR = data_dir("plans")


def bundled_plan(name: str) -> str:
    """Path of ``plans/NAME.yml`` shipped with origin-agent.

    Raises:
        UsageError: the plan is missing (an install without the plans/ folder).
    """
    path = PLANS_DIR / f"{name}.yml"
    if not path.is_file():
        raise UsageError(
            f"bundled plan {path} is missing",
            where=name,
            hint="reinstall origin-agent from its source tree",
        )
    return str(path)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-i",
        "--inventory",
        action="append",
        required=True,
        metavar="INVENTORY",
        help="inventory file, directory or host list (repeatable)",
    )
    parser.add_argument("-l", "--limit", metavar="PATTERN", help="only hosts matching PATTERN")
    parser.add_argument(
        "-C",
        "--check",
        action="store_true",
        help="change nothing anywhere; report what would change",
    )
    parser.add_argument("-D", "--diff", action="store_true", help="show diffs of config files")
    parser.add_argument(
        "-f",
        "--forks",
        type=int,
        default=20,
        metavar="N",
        help="hosts worked on at once (default 20)",
    )
    parser.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="VARS",
        help="key=value, YAML/JSON mapping, or @file.yml (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout, one per event")
    run_command.add_run_options(parser)


def register(sub: Any) -> None:
    rotate = sub.add_parser(
        "rotate",
        help="rolling certificate rotation across the fleet (plans/rotate.yml)",
        description=(
            "Renew every certificate that is due (by default once two thirds of its lifetime "
            "are used, or when its CA's renewal window says; --renew-before DAYS renews that "
            "long before expiry instead, 0 at expiry), or all of them with --force: one canary host first, then batches of a fifth of the "
            "fleet; the first batch with a failure stops the run. Each host is verified by a TLS "
            "handshake before its replaced certificate is revoked (where the CA can revoke); any "
            "failure restores its previous certificate and site."
        ),
        epilog=run_command.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rotate.add_argument("pattern", nargs="?", default="all", help="hosts to rotate (default all)")
    rotate.add_argument("--force", action="store_true", help="renew every certificate, due or not")
    rotate.add_argument(
        "--renew-before",
        type=int,
        default=None,
        metavar="DAYS",
        help="renew certificates expiring within DAYS, 0 at expiry (default: when two thirds "
        "of the lifetime are used)",
    )
    rotate.add_argument("--no-revoke", action="store_true", help="keep replaced certificates valid")
    _common(rotate)
    rotate.set_defaults(func=_rotate)

    boot = sub.add_parser(
        "bootstrap",
        help="bring fresh origins to HTTPS ready for Full (strict) (plans/bootstrap.yml)",
        description=(
            "For each HOST: install the web server if missing, make the ACME webroot, then key, "
            "certificate from the host's issuer, TLS site, config test, graceful reload and "
            "verification. Idempotent: a second run changes nothing."
        ),
        epilog=run_command.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    boot.add_argument("hosts", nargs="*", metavar="HOST", help="hosts or patterns (default all)")
    _common(boot)
    boot.set_defaults(func=_bootstrap)


def _run(args: argparse.Namespace, plan: str, target: str, extra: list[str]) -> int:
    if "target=" in " ".join(args.extra_vars):
        raise UsageError("give hosts as arguments, not as -e target=...", where=args.command)
    args.plan = bundled_plan(plan)
    args.extra_vars = [*extra, f"target={target}", *args.extra_vars]
    args.tags, args.skip_tags = [], []
    return run_command.run(args)


class RotationSummary:
    """Counts hosts rotated / unchanged / failed / unreachable / not run from the run's events."""

    def __init__(self) -> None:
        self.outcome: dict[str, str] = {}

    def emit(self, event: Any) -> None:
        from agent.report.events import HostUnreachable, RunFinished, TaskDone

        if isinstance(event, TaskDone) and event.module == "tls_origin":
            self.outcome[event.host] = {"changed": "rotated", "ok": "unchanged"}.get(
                event.status, event.status
            )
        elif isinstance(event, HostUnreachable):
            self.outcome[event.host] = "unreachable"
        elif isinstance(event, RunFinished):
            for host in event.hosts:
                if host.unreachable:
                    self.outcome[host.host] = "unreachable"
                elif host.not_run:
                    self.outcome[host.host] = "not run"
                elif host.failed:
                    self.outcome[host.host] = "failed"

    def close(self) -> None:
        pass

    def line(self) -> str:
        counts = {k: 0 for k in ("rotated", "unchanged", "failed", "unreachable", "not run")}
        for value in self.outcome.values():
            counts[value] = counts.get(value, 0) + 1
        return "rotation: " + ", ".join(f"{n} {k}" for k, n in counts.items())


def _rotate(args: argparse.Namespace) -> int:
    import sys

    extra = [] if args.renew_before is None else [f"renew_before_days={args.renew_before}"]
    if args.force:
        extra.append("force=true")
    if args.no_revoke:
        extra.append("revoke_replaced=false")
    summary = RotationSummary()
    args.observer = summary
    code = _run(args, "rotate", args.pattern, extra)
    (sys.stderr if args.json else sys.stdout).write(summary.line() + "\n")
    return code


def _bootstrap(args: argparse.Namespace) -> int:
    return _run(args, "bootstrap", ":".join(args.hosts) or "all", [])
