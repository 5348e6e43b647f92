"""Run one play's tasks, then its notified handlers, on one host.

A host's failure is a result: every :class:`~agent.errors.AgentError` (and any bug in a module)
becomes a failed task; a :class:`~agent.errors.ConnectError` marks the host unreachable. Nothing
escapes to the other hosts' threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.errors import AgentError, ConnectError, PlanError
from agent.modules import registry
from agent.modules.apply import ConnectionApplier
from agent.modules.base import Context, ModuleResult, WriteFile
from agent.plan.model import Play, Task
from agent.plan.render import Selection, condition, render_args, render_loop
from agent.plan.vars import Scope, is_template, names_used
from agent.report.events import Event, HostResult, HostUnreachable, TaskDone
from agent.transport.base import Connection

log = logging.getLogger(__name__)


@dataclass
class HostState:
    """Everything the run knows about one host, across plays."""

    name: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    ignored: int = 0
    unreachable: bool = False
    error: str = ""
    started: bool = False
    registered: dict[str, Any] = field(default_factory=dict)
    conn: Connection | None = None

    @property
    def done(self) -> bool:
        """Failed or unreachable: no further task runs on this host."""
        return self.unreachable or self.failed > 0

    def result(self) -> HostResult:
        return HostResult(
            host=self.name,
            ok=self.ok,
            changed=self.changed,
            failed=self.failed,
            skipped=self.skipped,
            ignored=self.ignored,
            unreachable=self.unreachable,
            not_run=not self.started,
            error=self.error,
        )


@dataclass(frozen=True)
class HostRunOptions:
    check: bool
    diff: bool
    now: datetime
    plan_dir: str
    selection: Selection
    extra_vars: dict[str, Any]


class HostRunner:
    """Runs ``play`` on one host; ``emit`` must be thread-safe (the engine locks it)."""

    def __init__(
        self,
        play: Play,
        state: HostState,
        scope: Scope,
        opts: HostRunOptions,
        connect: Callable[[], Connection],
        emit: Callable[[Event], None],
        stop: threading.Event | None = None,
    ) -> None:
        self.play = play
        self.state = state
        self.scope = scope
        self.opts = opts
        self.connect = connect
        self.emit = emit
        self.notified: set[str] = set()
        self.stop = stop or threading.Event()
        self.not_run: set[str] = set()

    def run(self) -> None:
        """Run the play's selected tasks, then notified handlers, unless the host is done.
        ``meta: flush_handlers`` runs the handlers notified so far at its place (whatever the
        tag selection); ``meta: noop`` does nothing."""
        self.state.started = True
        for task in self.play.tasks:
            if self.state.done or self.stop.is_set():
                return
            if task.flushes_handlers:
                self._flush()
            elif task.module != "meta" and self.opts.selection.selects(task):
                self._task(task, handler=False)
        self._flush()

    def _flush(self) -> None:
        """Run every handler whose name or listen topic was notified, in the order the handlers
        are written. A handler's own notifications run in the same flush: the ones written
        after it in the same pass, the ones before it in the next. Each handler runs at most
        once per flush, so a loop of notifications ends (at most one pass per handler)."""
        pending: set[str] = set()
        ran: set[int] = set()
        handlers = self.play.handlers
        for _ in range(len(handlers)):
            progressed = False
            for i, handler in enumerate(handlers):
                pending |= self.notified
                self.notified.clear()
                if i in ran or not handler.triggers & pending:
                    continue
                if self.state.done or self.stop.is_set():
                    return
                ran.add(i)
                progressed = True
                self._task(handler, handler=True)
            if not progressed:
                break
        self.notified.clear()

    def _conn(self) -> Connection:
        if self.state.conn is None:
            self.state.conn = self.connect()
        return self.state.conn

    def _done(
        self,
        task: Task,
        status: str,
        *,
        handler: bool,
        item: Any = None,
        msg: str = "",
        ignored: bool = False,
        result: ModuleResult | None = None,
    ) -> None:
        changes = tuple(c.describe() for c in result.changes) if result else ()
        diff = ""
        if result is not None and self.opts.diff:
            diff = "".join(c.diff() for c in result.changes if isinstance(c, WriteFile))
        self.emit(
            TaskDone(
                host=self.state.name,
                play=self.play.name,
                task=task.name,
                module=task.module,
                status=status,  # type: ignore[arg-type]
                msg=msg,
                handler=handler,
                item=None if item is None else _short(item),
                ignored=ignored,
                changes=changes,
                diff=diff,
                check=self.opts.check,
            )
        )

    def _task(self, task: Task, *, handler: bool) -> None:
        state = self.state
        results: list[dict[str, Any]] = []
        any_changed = False
        failed_msg = ""
        try:
            items = render_loop(task, self.scope)
        except AgentError as err:
            items, failed_msg = [], str(err)
        for item in items:
            if task.loop is not None:
                self.scope.set("item", item)
            outcome = self._one(task, item, handler=handler)
            results.append(outcome)
            any_changed = any_changed or bool(outcome.get("changed"))
            if outcome.get("failed") and not task.ignore_errors:
                failed_msg = str(outcome.get("msg", "failed"))
                break
            if state.unreachable:
                return
        if task.loop is not None:
            self.scope.unset("item")
        if failed_msg and not results:  # the loop itself failed
            state.failed += 1
            state.error = state.error or failed_msg
            self._done(task, "failed", handler=handler, msg=failed_msg)
            results.append({"failed": True, "msg": failed_msg})
        if task.register and self.opts.check and (any_changed or failed_msg):
            self.not_run.add(task.register)  # its command did not run: no rc, no stdout
        if task.register:
            value = (
                results[0]
                if task.loop is None and results
                else {
                    "results": results,
                    "changed": any_changed,
                    "failed": any(r.get("failed") for r in results),
                    "skipped": bool(results) and all(r.get("skipped") for r in results),
                }
            )
            state.registered[task.register] = value
            if task.register not in self.opts.extra_vars:
                self.scope.set(task.register, value)
        if any_changed:
            self.notified.update(task.notify)

    def _one(self, task: Task, item: Any, *, handler: bool) -> dict[str, Any]:
        """Run one task (or loop item); returns what ``register`` stores for it."""
        state = self.state
        try:
            if not condition(task, self.scope):
                state.skipped += 1
                self._done(task, "skipped", handler=handler, item=item)
                return {"changed": False, "failed": False, "skipped": True}
            result = self._run_module(task)
        except ConnectError as err:
            state.unreachable = True
            state.error = state.error or str(err)
            self.emit(HostUnreachable(host=state.name, msg=str(err)))
            return {"changed": False, "failed": True, "unreachable": True, "msg": str(err)}
        except AgentError as err:
            return self._agent_error(task, item, handler, err)
        except Exception as err:  # noqa: BLE001 - a module's bug fails this host only
            # one line for the user; the traceback only with -vv (never raw on stderr)
            log.debug("%s: internal error in module %s", state.name, task.module, exc_info=True)
            reason = " ".join(str(err).split())[:120]
            return self._failed(
                task,
                item,
                handler,
                f"internal error in module {task.module}: {type(err).__name__}"
                + (f": {reason}" if reason else "")
                + "; run with -vv for the traceback",
            )
        self._notify(result)
        if result.changed:
            state.changed += 1
        else:
            state.ok += 1
        status = "changed" if result.changed else "ok"
        self._done(task, status, handler=handler, item=item, msg=result.msg, result=result)
        return {
            "changed": result.changed,
            "failed": False,
            "skipped": False,
            "msg": result.msg,
            **dict(result.data),
        }

    def _run_module(self, task: Task) -> ModuleResult:
        """The task's module run on this host with its rendered arguments."""
        params, _ = render_args(task, self.scope)
        module = registry.get(task.module)()
        ctx = Context(
            host=self.state.name,
            now=self.opts.now,
            check=self.opts.check,
            diff=self.opts.diff,
            become=self.play.become if task.become is None else task.become,
            vars=self.scope.view(),
            plan_dir=self.opts.plan_dir,
            render=self.scope.render_file,
        )
        conn = self._conn()
        return module.run(conn, params, ctx, ConnectionApplier(conn))

    def _agent_error(self, task: Task, item: Any, handler: bool, err: AgentError) -> dict[str, Any]:
        """A task's user-facing failure; in check mode, a skip when it needs the result of a
        command check mode did not run."""
        needs = _names_in(task) & self.not_run
        if self.opts.check and isinstance(err, PlanError) and needs:
            self.state.skipped += 1
            msg = (
                f"check mode: needs {sorted(needs)[0]!r}, the result of a command that was not run"
            )
            self._done(task, "skipped", handler=handler, item=item, msg=msg)
            return {"changed": False, "failed": False, "skipped": True, "msg": msg}
        return self._failed(task, item, handler, str(err))

    def _notify(self, result: ModuleResult) -> None:
        self.notified.update(result.notify)

    def _failed(self, task: Task, item: Any, handler: bool, msg: str) -> dict[str, Any]:
        state = self.state
        line = msg.splitlines()[0] if msg else "failed"
        if task.ignore_errors:
            state.ignored += 1
        else:
            state.failed += 1
            state.error = state.error or line
        self._done(task, "failed", handler=handler, item=item, msg=line, ignored=task.ignore_errors)
        return {"changed": False, "failed": True, "skipped": False, "msg": line}


def _names_in(task: Task) -> set[str]:
    """Top-level variable names the task's templates read."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str) and is_template(value):
            found.update(names_used(value))
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    walk(dict(task.args))
    walk(task.loop)
    for cond in task.when:
        if isinstance(cond, str):
            walk(cond if is_template(cond) else "{{ " + cond + " }}")
    return found


def _short(item: Any) -> str:
    text = item if isinstance(item, str) else repr(item)
    return text if len(text) <= 80 else text[:77] + "..."
