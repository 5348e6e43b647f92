"""What happens after a ``rotate`` or ``status``: metrics for Prometheus and alerts for humans.

``rotate`` records each run in the state store (so ``status --prometheus`` republishes the last
run's figures), then, when asked for metrics or alerts, probes the hosts it worked on the way
``status`` does. A webhook gets one message per run that has failed or unreachable hosts or
certificates below ``--fail-within`` days; webhooks come from ``--notify`` (every problem) and
the ``notify_urls`` host variable (that host's problems). Neither metrics nor alerts change the
run's exit code; a metrics file that cannot be written is one warning line after a rotation.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.errors import AgentError, UsageError
from agent.inventory import Host
from agent.jobs.status import MODE_LABELS, StatusRow
from agent.pki.modes import MODES
from agent.report import metrics, notify
from agent.report.events import Event, HostUnreachable, RunFinished

NOTIFY_VAR = "notify_urls"
NOTIFY_ENV = "ORIGIN_AGENT_NOTIFY"
RESULT_STATUS = {0: "ok", 1: "failed", 3: "unreachable"}


class RunWatch:
    """A run observer: passes events on to ``inner`` and keeps what the alerts need."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.started = time.monotonic()
        self.problems: list[notify.Problem] = []
        self.elapsed = 0.0
        self.exit_code = 0

    def emit(self, event: Event) -> None:
        self.inner.emit(event)
        if isinstance(event, HostUnreachable):
            self.problems.append(notify.Problem(event.host, "unreachable", event.msg))
        elif isinstance(event, RunFinished):
            self.elapsed, self.exit_code = event.elapsed, event.exit_code
            seen = {p.host for p in self.problems}
            for host in event.hosts:
                if host.failed and not host.unreachable and host.host not in seen:
                    self.problems.append(notify.Problem(host.host, "failed", host.error))
                elif host.unreachable and host.host not in seen:
                    self.problems.append(notify.Problem(host.host, "unreachable", host.error))

    def close(self) -> None:
        self.inner.close()


def expiry_problems(
    rows: Sequence[StatusRow], fail_within: int | None, require_mode: str | None = None
) -> list[notify.Problem]:
    """Certificates below the threshold, and origins below the required mode."""
    out: list[notify.Problem] = []
    for row in rows:
        if fail_within is not None and (row.days_left is None or row.days_left < fail_within):
            left = (
                "no certificate served" if row.days_left is None else f"{row.days_left} days left"
            )
            out.append(
                notify.Problem(row.host, "expiring", f"{left} (limit {fail_within})", row.name)
            )
        if require_mode and row.mode in MODES and MODES.index(row.mode) < MODES.index(require_mode):
            out.append(
                notify.Problem(row.host, "mode", f"ready for {MODE_LABELS[row.mode]}", row.name)
            )
    return out


def cert_samples(rows: Sequence[StatusRow], store: Any) -> list[metrics.CertSample]:
    """Status rows as metric samples. Renewal is due when the renewal policy says (the row's
    ``renew_at``); the last rotation is when origin-agent issued the certificate being served
    (the state store's record with its fingerprint)."""
    out = []
    for row in rows:
        issued = None
        if store is not None and row.fingerprint:
            for cert in store.certificates(host=row.host, name=row.name):
                if cert.fingerprint == row.fingerprint:
                    issued = cert.issued_at
        out.append(
            metrics.CertSample(row.host, row.name, row.mode, row.not_after, row.renew_at, issued)
        )
    return out


def notify_all(
    args: argparse.Namespace,
    hosts: Sequence[Host],
    problems: Sequence[notify.Problem],
    *,
    command: str,
    counts: Mapping[str, int],
    exit_code: int,
) -> None:
    """One message per webhook that has problems to tell; failures are warnings. ``rotate``
    also posts to ``$ORIGIN_AGENT_NOTIFY`` and the hosts' ``notify_urls``; ``status`` only to
    ``--notify`` (so a scheduled rotate + status sends one message, not two)."""
    scheduled = command == "rotate"
    urls = notify_urls(args) if scheduled else list(args.notify)
    targets: dict[str, set[str] | None] = {url: None for url in urls}  # None: every host
    for host in hosts if scheduled else ():
        value = host.vars.get(NOTIFY_VAR) or []
        for url in [value] if isinstance(value, str) else list(value):
            if targets.get(str(url), set()) is not None:
                targets.setdefault(str(url), set()).add(host.name)  # type: ignore[union-attr]
    for url, only in targets.items():
        mine = [p for p in problems if only is None or p.host in only]
        if not mine:
            continue
        body = notify.message(
            mine,
            command=command,
            inventory=", ".join(args.inventory),
            counts=counts,
            exit_code=exit_code,
            generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        why = notify.post(url, body)
        if why:
            sys.stderr.write(f"origin-agent: {why}\n")


def check_urls(args: argparse.Namespace) -> None:
    """Reject a malformed ``--notify`` before anything runs.

    Raises:
        UsageError: not an http(s) URL.
    """
    for url in args.notify:
        why = notify.check_url(url)
        if why:
            raise UsageError(why, where=f"--notify {notify.shown(url)}")


def notify_urls(args: argparse.Namespace) -> list[str]:
    """``--notify`` URLs, then those in ``$ORIGIN_AGENT_NOTIFY`` (space-separated; a scheduled
    rotate reads it from its environment file, since webhook URLs hold tokens)."""
    return [*args.notify, *os.environ.get(NOTIFY_ENV, "").split()]


def _run_label(args: argparse.Namespace) -> str:
    """How a rotate run of these inventories is named in the state store's run records."""
    sources = (os.path.realpath(s) if os.path.exists(s) else s for s in args.inventory)
    return "rotate " + ", ".join(sources)


def last_run(store: Any, args: argparse.Namespace) -> metrics.RunSample | None:
    """The last finished rotate run of this inventory, from the state store."""
    for record in store.runs(limit=100):
        if record.plan == _run_label(args) and record.ended_at is not None:
            codes = {v: k for k, v in RESULT_STATUS.items()}
            return metrics.RunSample(
                results=dict(record.counts),
                duration=(record.ended_at - record.started_at).total_seconds(),
                ended_at=record.ended_at,
                exit_code=codes.get(record.status, 1),
            )
    return None


def after_rotate(
    args: argparse.Namespace, watch: RunWatch, outcome: Mapping[str, str], code: int
) -> None:
    """Record the run, then write metrics and send alerts if asked. Never raises for them."""
    from agent.commands.options import load_inventory
    from agent.jobs import status
    from agent.modules.tls import services

    counts: dict[str, int] = {k: 0 for k in metrics.RESULTS}
    for value in outcome.values():
        counts[value] = counts.get(value, 0) + 1
    ended = datetime.now(UTC)
    store = None
    try:
        store = services.store()
        run_id = store.start_run(_run_label(args), ended - timedelta(seconds=watch.elapsed))
        store.finish_run(run_id, ended, status=RESULT_STATUS.get(code, "failed"), counts=counts)
    except AgentError as err:
        sys.stderr.write(f"origin-agent: run not recorded: {err}\n")
    hosts = load_inventory(args.inventory).select(args.pattern, limit=args.limit)
    want_expiry = args.fail_within is not None
    if not (args.prometheus or notify_urls(args) or any(h.vars.get(NOTIFY_VAR) for h in hosts)):
        return
    rows: list[StatusRow] = []
    if args.prometheus or want_expiry:
        rows = status.collect(hosts, now=ended, forks=args.forks)
    run = metrics.RunSample(counts, watch.elapsed, ended, code)
    if args.prometheus:
        samples = cert_samples(rows, store)
        try:
            metrics.write(args.prometheus, samples, run, probed_at=ended)
        except AgentError as err:
            sys.stderr.write(f"origin-agent: {err}\n")
    problems = watch.problems + expiry_problems(rows, args.fail_within)
    notify_all(args, hosts, problems, command="rotate", counts=counts, exit_code=code)


def after_status(
    args: argparse.Namespace, hosts: Sequence[Host], rows: Sequence[StatusRow], now: datetime
) -> None:
    """``status --prometheus`` (an unwritable file is an error) and ``status --notify``.

    Raises:
        MetricsError: the metrics file cannot be written.
    """
    from agent.modules.tls import services

    store = None
    try:
        store = services.store()
    except AgentError:
        pass
    if args.prometheus:
        samples = cert_samples(rows, store)
        run = last_run(store, args) if store is not None else None
        metrics.write(args.prometheus, samples, run, probed_at=now)
    problems = expiry_problems(rows, args.fail_within, args.require_mode)
    counts = {"rows": len(rows), "problems": len(problems)}
    notify_all(
        args, hosts, problems, command="status", counts=counts, exit_code=4 if problems else 0
    )
