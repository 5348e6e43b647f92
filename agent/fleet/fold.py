"""Folding a worker's report of a slice into the controller's run: each host's counts, first
error and registered results into the runner's host state, its events into the run's one
event stream (recap, ``--json``, summary), its certificate records into the local store."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from agent.errors import AgentError
from agent.report.events import Event, HostUnreachable, TaskDone
from agent.runner.engine import Runner

log = logging.getLogger(__name__)

_EVENTS: dict[str, Any] = {"TaskDone": TaskDone, "HostUnreachable": HostUnreachable}
_COUNTS = ("ok", "changed", "failed", "skipped", "ignored")


def event_from_wire(data: dict[str, Any]) -> Event:
    """The event a worker sent (only host events travel).

    Raises:
        AgentError: an event type the controller does not know.
    """
    fields = dict(data)
    cls = _EVENTS.get(str(fields.pop("type", "")))
    if cls is None:
        raise AgentError(f"unknown event type {data.get('type')!r:.40}", where="fleet worker")
    if "changes" in fields:
        fields["changes"] = tuple(fields["changes"])
    event: Event = cls(**fields)
    return event


def fold_outcome(runner: Runner[Any], hosts: tuple[str, ...], result: Any) -> None:
    """Fold a slice's result; a host missing from it failed."""
    reported = result.get("hosts", {}) if isinstance(result, dict) else {}
    for name in hosts:
        outcome = reported.get(name)
        if not isinstance(outcome, dict):
            fold_failure(runner, (name,), "the worker's result does not name this host")
            continue
        for data in outcome.get("events", []):
            runner.emit(event_from_wire(data))
        state = runner.states[name]
        for count in _COUNTS:
            setattr(state, count, getattr(state, count) + int(outcome.get(count, 0)))
        state.unreachable = state.unreachable or bool(outcome.get("unreachable"))
        state.error = state.error or str(outcome.get("error") or "")
        state.started = state.started or bool(outcome.get("started"))
        registered = outcome.get("registered")
        if isinstance(registered, dict):
            state.registered = registered
        record_certificates(outcome.get("certificates", []))


def fold_failure(runner: Runner[Any], hosts: tuple[str, ...], why: str) -> None:
    """Every host of a slice failed with ``why`` (one line)."""
    line = " ".join(why.split())[:200]
    for name in hosts:
        state = runner.states[name]
        state.started = True
        state.failed += 1
        state.error = state.error or line


def record_certificates(records: list[dict[str, Any]]) -> None:
    """Add the worker's certificate records to the local store (once each: a resumed run
    folds a result again)."""
    from agent.modules.tls import services
    from agent.state.records import IssuedCertificate

    for data in records:
        try:
            store = services.store()
            known = {c.fingerprint for c in store.certificates(host=data["host"])}
            if data["fingerprint"] in known:
                continue
            fields = dict(data)
            for key in ("not_after", "issued_at", "revoked_at"):
                if fields.get(key):
                    fields[key] = datetime.fromisoformat(fields[key])
            fields["names"] = tuple(fields.get("names", ()))
            store.record_certificate(IssuedCertificate(**fields))
        except (AgentError, KeyError, TypeError, ValueError) as err:
            log.warning("%s: certificate record not kept: %s", data.get("host"), err)
