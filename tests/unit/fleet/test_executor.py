"""The Celery executor against the local one, with Celery running each task in process
(``task_always_eager``): same recap, same events, the same canary stop; the worker refuses a
plan or inventory that differs from the controller's; certificate records are folded once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.errors import AgentError
from agent.fleet import payload as wire
from agent.fleet import work
from agent.fleet.app import make_app
from agent.fleet.controller import CeleryExecutor, FleetRequest
from agent.fleet.fold import record_certificates
from agent.inventory import load
from agent.modules.tls import services
from agent.plan.parse import load_plan
from agent.report.events import Event, ListReporter, TaskDone
from agent.runner.engine import BatchExecutor, Runner, RunOptions, RunResult

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

PLAN = """\
- hosts: all
  serial: [1, "50%"]
  max_fail_percentage: 0
  tasks:
    - command: ["echo", "{{ inventory_hostname }}"]
      register: said
    - copy: {dest: "{{ out }}/a", content: "a {{ inventory_hostname }}\\n"}
    - command: ["test", "{{ inventory_hostname }}", "!=", "{{ bad | default('') }}"]
- hosts: all
  tasks:
    - copy: {dest: "{{ out }}/said", content: "{{ said.stdout }}\\n"}
"""


class MemoryRunBook:
    """The run book in a dict and task states from the app's result backend (Celery's own
    in-memory one here: no Redis in a unit test)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.runs: dict[str, dict[str, Any]] = {}
        self.sent_ids: dict[str, set[str]] = {}

    def ping(self) -> None:
        pass

    def record(self, run_id: str, data: dict[str, Any]) -> None:
        self.runs[run_id] = data

    def load(self, run_id: str) -> dict[str, Any] | None:
        return self.runs.get(run_id)

    def mark_sent(self, run_id: str, task_id: str) -> None:
        self.sent_ids.setdefault(run_id, set()).add(task_id)

    def sent(self, run_id: str) -> set[str]:
        return set(self.sent_ids.get(run_id, set()))

    def states(self, task_ids: list[str]) -> dict[str, tuple[str, Any]]:
        metas = {t: self.app.backend.get_task_meta(t) for t in task_ids}
        return {t: (m["status"], m["result"]) for t, m in metas.items()}


@pytest.fixture
def worker_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "worker-state"
    monkeypatch.setenv("ORIGIN_AGENT_STATE_DIR", str(path))
    try:
        yield path
    finally:
        services.configure(state_dir=None)
        work._configured.clear()


def files(tmp_path: Path, n: int, bad: str = "") -> tuple[str, str]:
    hosts = {}
    for i in range(1, n + 1):
        out = tmp_path / "hosts" / f"h{i}"
        out.mkdir(parents=True, exist_ok=True)
        hosts[f"h{i}"] = {"out": str(out), **({"worker_queue": "eu"} if i % 2 else {})}
    all_vars: dict[str, Any] = {"ansible_connection": "local"}
    if bad:
        all_vars["bad"] = bad
    tmp_path.mkdir(exist_ok=True)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"vars": all_vars, "hosts": hosts}}))
    plan = tmp_path / "plan.yml"
    plan.write_text(PLAN)
    return str(plan), str(inv)


def run(plan: str, inv: str, executor: BatchExecutor | None) -> tuple[RunResult, list[Event]]:
    from agent import transport
    from agent.inventory import connection_spec

    inventory = load([inv])
    reporter = ListReporter()
    result = Runner(
        load_plan(plan),
        lambda pattern: inventory.select(pattern, None),
        lambda host: transport.connect(connection_spec(host)),
        reporter,
        RunOptions(now=NOW),
        executor,
    ).run()
    return result, reporter.events


def eager(plan: str, inv: str, **kw: Any) -> CeleryExecutor:
    app = make_app("redis://127.0.0.1:1/0", 30)
    app.conf.update(
        task_always_eager=True,
        task_eager_propagates=False,
        task_store_eager_result=True,
        result_backend="cache+memory://",
    )
    request = FleetRequest(broker="redis://127.0.0.1:1/0", plan=plan, inventory=(inv,), **kw)
    run_id = uuid.uuid4().hex[:12]  # Celery's in-memory result cache is per process
    executor = CeleryExecutor(request, app, run_id, NOW, MemoryRunBook(app))
    executor.start()
    return executor


def done(events: list[Event]) -> list[tuple[str, str, str, str]]:
    return sorted((e.host, e.play, e.task, e.status) for e in events if isinstance(e, TaskDone))


def test_celery_run_gives_the_local_recap_and_events_and_stops_after_a_failing_batch(
    tmp_path: Path, worker_state: Path
) -> None:
    plan, inv = files(tmp_path / "local", 6, bad="h3")
    local, local_events = run(plan, inv, None)
    plan, inv = files(tmp_path / "fleet", 6, bad="h3")
    executor = eager(plan, inv, hosts_per_task=1)
    fleet, fleet_events = run(plan, inv, executor)
    assert fleet.exit_code == local.exit_code == 1
    assert fleet.aborted and local.aborted
    assert fleet.hosts == local.hosts
    assert done(fleet_events) == done(local_events)
    # canary h1, then h2-h4 (h3 fails): h5 and h6 never ran, on either executor
    assert [h.host for h in fleet.hosts if h.not_run] == ["h5", "h6"]
    # slices per queue, one host each: 1 (canary) + 3 in the second batch
    sent = executor.book.sent(executor.run_id)
    assert sent == {f"{executor.run_id}-{t}" for t in ("b1-s0", "b2-s0", "b2-s1", "b2-s2")}


def test_registered_results_follow_a_host_into_the_next_play(
    tmp_path: Path, worker_state: Path
) -> None:
    plan, inv = files(tmp_path, 3)
    result, _ = run(plan, inv, eager(plan, inv, hosts_per_task=2))
    assert result.exit_code == 0
    for i in range(1, 4):
        assert (tmp_path / "hosts" / f"h{i}" / "said").read_text() == f"h{i}\n"


def test_the_worker_refuses_a_plan_or_inventory_that_differs_from_the_controllers(
    tmp_path: Path, worker_state: Path
) -> None:
    plan, inv = files(tmp_path, 2)
    host = load([inv]).hosts["h1"]
    task = {
        "plan": plan,
        "plan_sha256": wire.file_sha256(plan),
        "inventory": [inv],
        "play": 0,
        "hosts": [["h1", wire.vars_digest(host.vars, host.groups)]],
    }
    with pytest.raises(AgentError, match="plan.yml differs from the controller's copy"):
        work.run_slice({**task, "plan_sha256": "0" * 64})
    with pytest.raises(AgentError, match="^h1: inventory differs"):
        work.run_slice({**task, "hosts": [["h1", "f" * 64]]})


def test_a_task_that_fails_on_the_worker_fails_its_hosts_with_one_line(
    tmp_path: Path, worker_state: Path
) -> None:
    plan, inv = files(tmp_path, 2)
    executor = eager(plan, inv)
    Path(plan).write_text(PLAN + "\n")  # the workers would load another plan
    result, _ = run(plan, inv, executor)
    assert result.exit_code == 1
    assert "worker task failed" in result.host("h1").error
    assert "differs from the controller's copy" in result.host("h1").error


def test_certificate_records_are_folded_into_the_store_once(tmp_path: Path) -> None:
    services.configure(state_dir=str(tmp_path / "state"))
    try:
        record = {
            "host": "h1",
            "name": "h1.test",
            "serial": "0a",
            "fingerprint": "ab" * 32,
            "pin": "pin",
            "not_after": "2027-01-01T00:00:00+00:00",
            "backend": "localca",
            "issued_at": NOW.isoformat(),
            "backend_id": "",
            "names": ["h1.test"],
            "cert_pem": "-----BEGIN CERTIFICATE-----\n",
            "revoked_at": None,
        }
        record_certificates([record])
        record_certificates([record])  # a resumed run folds a result again
        kept = services.store().certificates(host="h1")
        assert [(c.serial, c.names, c.not_after.year) for c in kept] == [("0a", ("h1.test",), 2027)]
    finally:
        services.configure(state_dir=None)


def test_the_celery_app_module_imports_without_a_broker_and_fails_clearly_when_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    monkeypatch.delenv("ORIGIN_AGENT_BROKER", raising=False)
    module = importlib.import_module("agent.fleet.celery_app")
    module = importlib.reload(module)
    assert "origin_agent.run_slice" in module.app.tasks
    assert module.app.conf.task_acks_late and module.app.conf.task_reject_on_worker_lost
    assert module.app.conf.worker_prefetch_multiplier == 1
    assert module.app.conf.accept_content == ["json"]
    with pytest.raises(AgentError, match=r"no broker configured; set \$ORIGIN_AGENT_BROKER"):
        with module.app.connection() as conn:
            conn.connect()
