"""The worker's side of a fleet run: the task ``origin_agent.run_slice``.

A slice runs on the worker exactly as the controller's threads would run it: the same plan and
inventory files (their digests checked against the task's), the same modules, one
:class:`~agent.runner.host.HostRunner` per host, a thread per host. Keys are made here and
written to the origin from here; certificates are recorded in the worker's own state store. The
result is metadata only: per host its counts, first error, registered results (secret-looking
values redacted), its events and the records of the certificates it was issued.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.errors import AgentError, ConnectError
from agent.fleet import payload as wire
from agent.report.events import Event, ListReporter

log = logging.getLogger(__name__)

_configured: list[tuple[str | None, str]] = []


def register(app: Any) -> None:
    """Register the fleet task on ``app`` (a Celery app; not shared with other apps)."""
    app.task(name="origin_agent.run_slice", shared=False)(run_slice)


def run_slice(task: dict[str, Any]) -> dict[str, Any]:
    """Run one slice; returns ``{"hosts": {name: outcome}}`` (see :func:`_outcome`).

    Raises:
        AgentError: the worker's files differ from the controller's (plan digest, a host's
            variables), or the plan or inventory cannot be loaded here.
    """
    from agent.inventory import load
    from agent.plan.parse import load_plan

    plan_path = str(task["plan"])
    if wire.file_sha256(plan_path) != task["plan_sha256"]:
        raise AgentError(f"{plan_path} differs from the controller's copy", where="worker")
    inventory = load(list(task["inventory"]))
    _configure(task["inventory"])
    plan = load_plan(plan_path)
    play = plan.plays[int(task["play"])]
    hosts = []
    for name, digest in task["hosts"]:
        host = inventory.hosts.get(name)
        if host is None or wire.vars_digest(host.vars, host.groups) != digest:
            raise AgentError(
                "inventory differs from the controller's (its variables or groups)", where=name
            )
        hosts.append(host)
    forks = max(1, min(int(task.get("forks", 20)), len(hosts)))
    with ThreadPoolExecutor(max_workers=forks, thread_name_prefix="host") as pool:
        outcomes = list(pool.map(lambda h: _host(task, plan, play, h), hosts))
    return {"hosts": {o["host"]: o for o in outcomes}}


def _configure(inventory: list[str]) -> None:
    """Point the TLS services at this worker's store and the inventory's directory (once per
    process unless they change)."""
    from agent.modules.tls import services

    first = next((s for s in inventory if os.path.exists(s)), None)
    base = "."
    if first is not None:
        base = str(Path(first).resolve().parent if os.path.isfile(first) else Path(first).resolve())
    key = (os.environ.get("ORIGIN_AGENT_STATE_DIR"), base)
    if _configured != [key]:
        services.configure(state_dir=key[0], base_dir=base)
        _configured[:] = [key]


def _host(task: dict[str, Any], plan: Any, play: Any, host: Any) -> dict[str, Any]:
    from agent import transport
    from agent.inventory import connection_spec
    from agent.plan.render import Selection, scope_for
    from agent.runner.host import HostRunner, HostRunOptions, HostState

    state = HostState(host.name, registered=dict(task.get("registered", {}).get(host.name, {})))
    events = ListReporter()
    opts = HostRunOptions(
        check=bool(task["check"]),
        diff=bool(task["diff"]),
        now=datetime.fromisoformat(task["now"]),
        plan_dir=plan.plan_dir,
        selection=Selection(frozenset(task["tags"]), frozenset(task["skip_tags"])),
        extra_vars=dict(task["extra_vars"]),
    )
    scope = scope_for(host.name, host.vars, host.groups, play, opts.extra_vars, state.registered)
    before = _certificate_ids(host.name)

    def connect() -> Any:
        try:
            return transport.connect(
                connection_spec(host), accept_new_host_keys=bool(task["accept_new_host_keys"])
            )
        except ConnectError:
            raise
        except AgentError as err:
            raise ConnectError(str(err), host=host.name) from err

    try:
        HostRunner(play, state, scope, opts, connect, events.emit).run()
    except Exception as err:  # noqa: BLE001 - never let one host take down the slice
        log.exception("%s: internal error", host.name)
        state.failed += 1
        state.error = state.error or f"internal error: {type(err).__name__}"
    finally:
        if state.conn is not None:
            try:
                state.conn.close()
            except Exception:  # noqa: BLE001
                log.debug("%s: close failed", host.name, exc_info=True)
            state.conn = None
    return _outcome(state, events.events, _new_certificates(host.name, before))


def _outcome(state: Any, events: list[Event], certificates: list[dict[str, Any]]) -> dict[str, Any]:
    """What the controller folds into its run for one host (plain JSON, metadata only)."""
    return {
        "host": state.name,
        "ok": state.ok,
        "changed": state.changed,
        "failed": state.failed,
        "skipped": state.skipped,
        "ignored": state.ignored,
        "unreachable": state.unreachable,
        "error": state.error,
        "started": state.started,
        "registered": wire.redact(state.registered),
        "events": [event_to_wire(e) for e in events],
        "certificates": certificates,
    }


def event_to_wire(event: Event) -> dict[str, Any]:
    return {"type": type(event).__name__, **dataclasses.asdict(event)}


def _certificate_ids(host: str) -> set[int]:
    from agent.modules.tls import services

    try:
        return {c.id for c in services.store().certificates(host=host) if c.id is not None}
    except AgentError:
        return set()


def _new_certificates(host: str, before: set[int]) -> list[dict[str, Any]]:
    """Records issued for ``host`` during this slice (certificate and metadata, never a key)."""
    from agent.modules.tls import services

    try:
        found = services.store().certificates(host=host)
    except AgentError:
        return []
    out = []
    for cert in found:
        if cert.id is None or cert.id in before:
            continue
        record = dataclasses.asdict(cert)
        record.pop("id")
        for key in ("not_after", "issued_at", "revoked_at"):
            if record[key] is not None:
                record[key] = record[key].isoformat()
        record["names"] = list(record["names"])
        out.append(record)
    return out
