"""The controller's side of a fleet run: :class:`CeleryExecutor`, a batch executor for the
runner that sends each batch's hosts to Celery workers as slices and folds what they report
back into the one run (recap, ``--json`` events, summary, state store).

The runner plans the batches (``serial``, canary, ``max_fail_percentage``) exactly as for the
local executor; a batch ends when every one of its tasks has reported. Task ids follow from the
run id and the batch and slice numbers, so a run interrupted on the controller is resumed
(``--resume RUN_ID``) by planning it again: a slice whose task the run already sent is waited
for (or its stored result taken), never sent twice. The run's record (plan digest, inventory,
the run's clock) and the sent task ids live in the result backend beside the results.

Losing the broker mid-run ends the run with :class:`~agent.fleet.app.BrokerError` (exit 6):
origin transactions already running finish or roll back on their own (each is atomic on its
origin), so nothing is left half-switched; the run can be resumed once the broker is back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from agent.errors import UsageError
from agent.fleet import payload as wire
from agent.fleet.app import TASK_NAME, BrokerError, make_app, safe_url, visibility_timeout
from agent.fleet.fold import fold_failure, fold_outcome
from agent.plan.model import Play
from agent.runner.engine import Runner
from agent.runner.host import HostRunOptions

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
KEY = "origin-agent:run:{run_id}"
KEEP_SECONDS = 7 * 86400  # as long as the results (result_expires)


@dataclass(frozen=True)
class FleetRequest:
    """One run's fleet settings and the plan data every task carries."""

    broker: str
    plan: str
    inventory: tuple[str, ...]
    check: bool = False
    diff: bool = False
    forks: int = 20
    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()
    extra_vars: dict[str, Any] = field(default_factory=dict)
    accept_new_host_keys: bool = False
    task_timeout: float = 600.0
    hosts_per_task: int = wire.DEFAULT_HOSTS_PER_TASK
    resume: str | None = None
    limit: str | None = None


class RunBook(Protocol):
    """Where a fleet run keeps its record and the ids of the tasks it sent (beside the
    results, in the result backend)."""

    def ping(self) -> None: ...

    def record(self, run_id: str, data: dict[str, Any]) -> None: ...

    def load(self, run_id: str) -> dict[str, Any] | None: ...

    def mark_sent(self, run_id: str, task_id: str) -> None: ...

    def sent(self, run_id: str) -> set[str]: ...

    def states(self, task_ids: list[str]) -> dict[str, tuple[str, Any]]:
        """Each task's Celery state and result (``PENDING``, None: nothing stored yet)."""
        ...


class RedisRunBook:
    """:class:`RunBook` in Redis: ``origin-agent:run:ID`` (JSON) and ``...:sent`` (a set),
    kept as long as the results."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def ping(self) -> None:
        self.client.ping()

    def record(self, run_id: str, data: dict[str, Any]) -> None:
        self.client.set(KEY.format(run_id=run_id), json.dumps(data), ex=KEEP_SECONDS)

    def load(self, run_id: str) -> dict[str, Any] | None:
        raw = self.client.get(KEY.format(run_id=run_id))
        return None if raw is None else dict(json.loads(raw))

    def mark_sent(self, run_id: str, task_id: str) -> None:
        key = KEY.format(run_id=run_id) + ":sent"
        self.client.sadd(key, task_id)
        self.client.expire(key, KEEP_SECONDS)

    def sent(self, run_id: str) -> set[str]:
        return {m.decode() for m in self.client.smembers(KEY.format(run_id=run_id) + ":sent")}

    def states(self, task_ids: list[str]) -> dict[str, tuple[str, Any]]:
        """One MGET of the tasks' result metas (Celery's redis backend keys)."""
        metas = self.client.mget([f"celery-task-meta-{t}" for t in task_ids])
        out: dict[str, tuple[str, Any]] = {}
        for task_id, raw in zip(task_ids, metas, strict=True):
            meta = json.loads(raw) if raw else {}
            out[task_id] = (str(meta.get("status", "PENDING")), meta.get("result"))
        return out


@contextmanager
def broker_guard(url: str, run_id: str, *, started: bool = True) -> Iterator[None]:
    """Turn the broker's connection errors into one :class:`BrokerError` line."""
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    try:
        yield
    except (RedisError, OperationalError, ConnectionError, TimeoutError) as err:
        reason = " ".join(str(err).split())[:160].rstrip(".") or type(err).__name__
        if not started:
            raise BrokerError(
                f"broker {safe_url(url)} unreachable: {reason}; nothing was run",
                where=f"fleet run {run_id}",
            ) from err
        raise BrokerError(
            f"broker {safe_url(url)} lost: {reason}",
            where=f"fleet run {run_id}",
            hint=f"hosts already switched stay switched; resume with --resume {run_id}",
        ) from err


class CeleryExecutor:
    """Runs each batch on Celery workers (see the module docstring)."""

    def __init__(
        self,
        request: FleetRequest,
        app: Any,
        run_id: str,
        now: datetime,
        book: RunBook | None = None,
    ) -> None:
        self.request = request
        self.app = app
        self.book: RunBook = book or RedisRunBook(app.backend.client)
        self.run_id = run_id
        self.now = now
        self.batches = 0
        self.stall = visibility_timeout(request.task_timeout) + request.task_timeout
        self._sent: set[str] = set()
        self._base = {
            "run": run_id,
            "plan": request.plan,
            "plan_sha256": wire.file_sha256(request.plan),
            "inventory": list(request.inventory),
            "check": request.check,
            "diff": request.diff,
            "forks": request.forks,
            "tags": sorted(request.tags),
            "skip_tags": sorted(request.skip_tags),
            "extra_vars": dict(request.extra_vars),
            "accept_new_host_keys": request.accept_new_host_keys,
            "now": now.isoformat(),
        }
        wire.refuse_secrets(self._base)

    def start(self) -> None:
        """Check the broker, then record the run (or, resuming, check it is the same run).

        Raises:
            BrokerError: unreachable broker; UsageError: the run to resume is unknown or was
                another plan or inventory.
        """
        with broker_guard(self.request.broker, self.run_id, started=False):
            self.book.ping()
            if self.request.resume is None:
                record = {k: self._base[k] for k in ("plan", "plan_sha256", "inventory", "now")}
                record["settings"] = settings_digest(self.request)
                self.book.record(self.run_id, record)
                return
            self._sent = self.book.sent(self.run_id)

    def run_batch(
        self, runner: Runner[Any], play: Play, batch: list[Any], opts: HostRunOptions
    ) -> None:
        self.batches += 1
        index = next(i for i, p in enumerate(runner.plan.plays) if p is play)
        pairs = [(h.name, wire.queue_of(h.name, h.vars)) for h in batch]
        by_name = {h.name: h for h in batch}
        tasks = []
        for number, part in enumerate(wire.slices(pairs, self.request.hosts_per_task)):
            body = dict(self._base)
            body["play"] = index
            body["hosts"] = [
                [n, wire.vars_digest(by_name[n].vars, by_name[n].groups)] for n in part.hosts
            ]
            body["registered"] = {n: wire.redact(runner.states[n].registered) for n in part.hosts}
            tasks.append((f"{self.run_id}-b{self.batches}-s{number}", part, body))
        with broker_guard(self.request.broker, self.run_id):
            for tid, part, body in tasks:
                self._send(tid, part, body)
            self._wait(runner, {tid: part for tid, part, _ in tasks})

    def _send(self, task_id: str, part: wire.Slice, body: dict[str, Any]) -> None:
        if task_id in self._sent:  # resuming: sent by the interrupted controller
            return
        message = wire.decode(wire.encode(body))
        self.book.mark_sent(self.run_id, task_id)
        self._sent.add(task_id)
        # the registered task's apply_async (send_task ignores task_always_eager); its
        # AsyncResult is dropped at once: states are read with one MGET per poll
        self.app.tasks[TASK_NAME].apply_async(
            args=[message],
            task_id=task_id,
            queue=part.queue,
            time_limit=int(self.request.task_timeout),  # the controller's --task-timeout
        )

    def _wait(self, runner: Runner[Any], parts: dict[str, wire.Slice]) -> None:
        """Fold each task's result as it comes; a task stalled (no state change for the
        visibility timeout plus the task timeout) fails its hosts."""
        pending = list(parts)
        seen = dict.fromkeys(pending, "")
        progress = time.monotonic()
        while pending:
            for tid, (status, result) in self.book.states(pending).items():
                if status != seen[tid]:
                    seen[tid], progress = status, time.monotonic()
                if status == "SUCCESS":
                    fold_outcome(runner, parts[tid].hosts, result)
                elif status in ("FAILURE", "REVOKED"):
                    fold_failure(runner, parts[tid].hosts, f"worker task failed: {_why(result)}")
                else:
                    continue
                pending.remove(tid)
            if pending and time.monotonic() - progress > self.stall:
                for tid in pending:
                    fold_failure(runner, parts[tid].hosts, "no worker finished its task in time")
                return
            if pending:
                time.sleep(POLL_SECONDS)


def _why(result: Any) -> str:
    """One line for a failed task's stored exception."""
    if isinstance(result, dict):
        message = result.get("exc_message", "")
        if isinstance(message, list):
            message = " ".join(str(m) for m in message)
        return f"{result.get('exc_type', 'error')}: {message}"
    return str(result)


def settings_digest(request: FleetRequest) -> str:
    """What else decides a run's batches and tasks: a resumed run must have the same."""
    settings = {
        "limit": request.limit,
        "check": request.check,
        "diff": request.diff,
        "tags": sorted(request.tags),
        "skip_tags": sorted(request.skip_tags),
        "extra_vars": request.extra_vars,
        "hosts_per_task": request.hosts_per_task,
    }
    text = json.dumps(settings, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def open_fleet(request: FleetRequest, hosts: Iterable[Any] = ()) -> tuple[CeleryExecutor, datetime]:
    """The executor of a fleet run (new, or ``request.resume``) and the run's clock; every
    one of ``hosts`` (the inventory's) must name a valid ``worker_queue`` before anything runs.

    Raises:
        BrokerError: the broker is unreachable; UsageError: the run to resume is unknown or
            was another plan or inventory.
    """
    for host in hosts:
        wire.queue_of(host.name, host.vars)
    request = dataclasses.replace(
        request,
        plan=os.path.abspath(request.plan),
        inventory=tuple(os.path.abspath(s) if os.path.exists(s) else s for s in request.inventory),
    )
    app = make_app(request.broker, request.task_timeout)
    # the controller does not wait out a lost broker: one retry, then BrokerError's one line
    # (not Celery's log line per retry)
    options = dict(app.conf.result_backend_transport_options)
    app.conf.result_backend_transport_options = {**options, "retry_policy": {"max_retries": 1}}
    logging.getLogger("celery.backends.redis").setLevel(logging.CRITICAL)
    run_id = request.resume or uuid.uuid4().hex[:12]
    now = datetime.now(UTC)
    if request.resume is not None:
        now = _resumed_clock(app, request)
    executor = CeleryExecutor(request, app, run_id, now)
    executor.start()
    verb = "resuming" if request.resume else "started"
    sys.stderr.write(
        f"origin-agent: fleet run {run_id} {verb} on {safe_url(request.broker)} "
        f"(after an interruption: the same command with --resume {run_id})\n"
    )
    return executor, now


def _resumed_clock(app: Any, request: FleetRequest) -> datetime:
    run_id = str(request.resume)
    if not run_id.replace("-", "").isalnum() or len(run_id) > 64:
        raise UsageError(f"{run_id!r:.70} is not a run id", where="--resume")
    with broker_guard(request.broker, run_id, started=False):
        record = RedisRunBook(app.backend.client).load(run_id)
    if record is None:
        raise UsageError(
            f"the broker holds no run {run_id}", where="--resume", hint="runs are kept 7 days"
        )
    same = (record["plan"], record["plan_sha256"], tuple(record["inventory"])) == (
        request.plan,
        wire.file_sha256(request.plan),
        request.inventory,
    )
    if not same:
        raise UsageError(
            f"run {run_id} was another plan or inventory (or the plan changed since)",
            where="--resume",
        )
    if record.get("settings") != settings_digest(request):
        raise UsageError(
            f"run {run_id} was started with other options (-e, --limit, tags, --check, --diff "
            "or --hosts-per-task): resume it with the same ones",
            where="--resume",
        )
    return datetime.fromisoformat(record["now"])
