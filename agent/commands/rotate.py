"""`origin-agent rotate [PATTERN]`: rolling certificate rotation (the bundled rotate plan)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agent.commands import options
from agent.commands.run import EPILOG, run_bundled
from agent.errors import UsageError
from agent.jobs import followup
from agent.report.events import Event, HostUnreachable, RunFinished, TaskDone

OUTCOMES = ("rotated", "unchanged", "failed", "unreachable", "not run")


def register(sub: Any) -> None:
    rotate = sub.add_parser(
        "rotate",
        help="rolling certificate rotation across the fleet (plans/rotate.yml)",
        description=(
            "Renew every certificate that is due (by default once two thirds of its lifetime "
            "are used, or when its CA's renewal window says; --renew-before DAYS renews that "
            "long before expiry instead, 0 at expiry), or all of them with --force: one canary "
            "host first, then batches of a fifth of the "
            "fleet; the first batch with a failure stops the run. Each host is verified by a TLS "
            "handshake before its replaced certificate is revoked (where the CA can revoke); any "
            "failure restores its previous certificate and site."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rotate.add_argument("pattern", nargs="?", default="all", help="hosts to rotate (default all)")
    rotate.add_argument("--force", action="store_true", help="renew every certificate, due or not")
    options.add_renew_before(rotate)
    rotate.add_argument("--no-revoke", action="store_true", help="keep replaced certificates valid")
    options.add_plan_run_options(rotate)
    options.add_fail_within(rotate)
    options.add_metrics_and_alerts(rotate)
    rotate.set_defaults(func=run)


def rotation_vars(*, renew_before: int | None, force: bool, no_revoke: bool) -> dict[str, Any]:
    """The rotate plan's variables for the command's flags, typed (the user's ``-e`` may still
    override them); no ``renew_before_days`` unless given (the renewal policy's default)."""
    out: dict[str, Any] = {} if renew_before is None else {"renew_before_days": renew_before}
    if force:
        out["force"] = True
    if no_revoke:
        out["revoke_replaced"] = False
    return out


class RotationSummary:
    """An observer of the run's events: hosts rotated / unchanged / failed / unreachable / not
    run, for the one summary line printed after the recap."""

    def __init__(self) -> None:
        self.outcome: dict[str, str] = {}

    def emit(self, event: Event) -> None:
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

    def line(self, *, check: bool = False) -> str:
        """The one-line summary; in check mode nothing was rotated, so it says "would"."""
        counts = dict.fromkeys(OUTCOMES, 0)
        for value in self.outcome.values():
            counts[value] = counts.get(value, 0) + 1
        if check:
            counts = {("would rotate" if k == "rotated" else k): n for k, n in counts.items()}
        head = "rotation (check mode, nothing changed): " if check else "rotation: "
        return head + ", ".join(f"{n} {k}" for k, n in counts.items())


def run(args: argparse.Namespace) -> int:
    if not args.pattern.strip():
        raise UsageError("empty host pattern", where="PATTERN", hint="omit it for all hosts")
    summary = RotationSummary()
    command_vars = rotation_vars(
        renew_before=args.renew_before, force=args.force, no_revoke=args.no_revoke
    )
    followup.check_urls(args)
    watch = followup.RunWatch(summary)
    code = run_bundled(args, "rotate", args.pattern, command_vars, observer=watch)
    if summary.outcome or code == 0:  # a run refused before any host ran has no summary
        (sys.stderr if args.json else sys.stdout).write(summary.line(check=args.check) + "\n")
    if not args.check:
        followup.after_rotate(args, watch, summary.outcome, code)
    return code
