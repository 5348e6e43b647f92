"""Run a plan over an inventory: plays in order, batches per ``serial``, a thread per host.

For each play, the selected hosts are split into batches (``serial``); a batch's hosts run in
up to ``forks`` worker threads, each host its tasks then its notified handlers. After a batch,
if its failed share (failed or unreachable hosts) is above the play's threshold
(``max_fail_percentage``; ``any_errors_fatal`` means 0), the run stops before the next batch.
Hosts that failed or were unreachable take no part in later plays. Each host gets one
connection for the whole run, opened on first use and closed at the end.

Before anything runs, the whole plan is checked for every host (:func:`check_plan`).

Who runs a batch's hosts is the runner's :class:`BatchExecutor`: :class:`LocalExecutor` (the
default) runs them in this process's threads; ``agent.fleet`` sends them to Celery workers. The
batches, thresholds and events are the runner's whatever the executor.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from agent.errors import AgentError, ConnectError, InventoryError, NoHostError, PlanError
from agent.plan.model import Plan, Play, batch_sizes
from agent.plan.render import Selection, check_plan, scope_for
from agent.plan.vars import Scope, is_template
from agent.report.events import (
    BatchAborted,
    BatchStarted,
    Event,
    HostResult,
    PlayStarted,
    Reporter,
    RunFinished,
    RunStarted,
    exit_code_for,
)
from agent.runner.host import HostRunner, HostRunOptions, HostState
from agent.transport.base import Connection
from agent.validate import shown

log = logging.getLogger(__name__)


class HostLike(Protocol):
    """What the runner needs of an inventory host (``agent.inventory.model.Host`` fits)."""

    @property
    def name(self) -> str: ...

    @property
    def vars(self) -> dict[str, Any]: ...

    @property
    def groups(self) -> list[str]: ...


Host = TypeVar("Host", bound=HostLike)


@dataclass(frozen=True)
class RunOptions:
    check: bool = False
    diff: bool = False
    forks: int = 20
    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()
    extra_vars: Mapping[str, Any] = field(default_factory=dict)
    now: datetime | None = None


@dataclass(frozen=True)
class RunResult:
    hosts: tuple[HostResult, ...]
    exit_code: int
    aborted: bool

    def host(self, name: str) -> HostResult:
        return next(h for h in self.hosts if h.host == name)


class BatchExecutor(Protocol):
    """Runs one batch's hosts for the runner and leaves each host's outcome in
    ``runner.states`` (emitting its events through ``runner.emit``); returns when every host of
    the batch has finished. A host's failure is a result; an error raised (e.g. the broker is
    gone) ends the run."""

    def run_batch(
        self, runner: Runner[Any], play: Play, batch: list[Any], opts: HostRunOptions
    ) -> None: ...


class LocalExecutor:
    """A thread per host (up to ``forks``) in this process: today's runner."""

    def run_batch(
        self, runner: Runner[Any], play: Play, batch: list[Any], opts: HostRunOptions
    ) -> None:
        runner.run_local(play, batch, opts)


class Runner(Generic[Host]):
    """One run of one plan. Create, then call :meth:`run` once.

    Args:
        plan: the statically valid plan.
        select: gives the hosts a play's ``hosts:`` pattern selects (after ``--limit``).
        connect: opens the connection to a host; raises ConnectError when it cannot.
        reporter: receives the events.
        options: check/diff/forks/tags/extra vars.
        executor: who runs a batch's hosts (default: threads here, :class:`LocalExecutor`).
    """

    def __init__(
        self,
        plan: Plan,
        select: Callable[[str], list[Host]],
        connect: Callable[[Host], Connection],
        reporter: Reporter,
        options: RunOptions = RunOptions(),
        executor: BatchExecutor | None = None,
    ) -> None:
        if options.forks < 1:
            raise AgentError("forks must be at least 1")
        self.plan = plan
        self.select = select
        self.connect = connect
        self.reporter = reporter
        self.options = options
        self.executor: BatchExecutor = executor or LocalExecutor()
        self.now: datetime = options.now or datetime.now(UTC)
        self.selection = Selection(options.tags, options.skip_tags)
        self.states: dict[str, HostState] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def emit(self, event: Event) -> None:
        with self._lock:
            self.reporter.emit(event)

    def _scope(self, host: Host, play: Play, state: HostState | None) -> Scope:
        return scope_for(
            host.name,
            host.vars,
            host.groups,
            play,
            self.options.extra_vars,
            state.registered if state else None,
        )

    def check(self) -> dict[str, list[Host]]:
        """Select each play's hosts and check the plan for all of them.

        Raises:
            PlanErrors: every problem found; InventoryError: a bad host pattern.
        """
        hosts = {f"{i}": self._select(play) for i, play in enumerate(self.plan.plays)}
        index = {id(p): f"{i}" for i, p in enumerate(self.plan.plays)}
        check_plan(
            self.plan,
            lambda play: (self._scope(h, play, None) for h in hosts[index[id(play)]]),
            self.selection,
        )
        return hosts

    def _select(self, play: Play) -> list[Host]:
        """The play's hosts; a pattern that matches no host of the inventory is an error naming
        the play (a typo would otherwise run nothing and exit 0).

        Raises:
            InventoryError: the pattern is malformed or matches no host.
        """
        pattern = self._pattern(play)
        try:
            return self.select(pattern)
        except NoHostError as err:
            raise InventoryError(
                f"play [{play.name}]: hosts pattern {shown(pattern, 80)} matches no host; "
                "nothing was run",
                where=play.pos,
            ) from err

    def _pattern(self, play: Play) -> str:
        """The play's host pattern; a template may use extra vars (``hosts: "{{ target }}"``).

        Raises:
            PlanError: the template fails or does not give a string.
        """
        if not is_template(play.hosts):
            return play.hosts
        value = Scope("hosts", [dict(self.options.extra_vars)]).render_text(play.hosts, play.pos)
        if not isinstance(value, str) or not value.strip():
            raise PlanError(f"hosts must give a host pattern, got {value!r}", where=play.pos)
        return value

    def run(self) -> RunResult:
        """Check the plan, then run it; hosts' failures are results, not exceptions.

        Raises:
            PlanErrors: the plan is wrong for some host (nothing ran).
            InventoryError: a play's host pattern is wrong (nothing ran).
        """
        started = time.monotonic()
        now = self.now
        selected = self.check()
        everyone: dict[str, Host] = {}
        for hosts in selected.values():
            for h in hosts:
                everyone.setdefault(h.name, h)
        self.states = {name: HostState(name) for name in everyone}
        self.emit(
            RunStarted(
                plan=self.plan.path,
                hosts=len(everyone),
                forks=self.options.forks,
                check=self.options.check,
                diff=self.options.diff,
            )
        )
        host_opts = HostRunOptions(
            check=self.options.check,
            diff=self.options.diff,
            now=now,
            plan_dir=self.plan.plan_dir,
            selection=self.selection,
            extra_vars=dict(self.options.extra_vars),
        )
        aborted = False
        try:
            for i, play in enumerate(self.plan.plays):
                if not self._play(play, selected[f"{i}"], host_opts):
                    aborted = True
                    break
        finally:
            self._close_all()
        results = tuple(s.result() for s in self.states.values())
        code = exit_code_for(results, aborted)
        self.emit(
            RunFinished(
                hosts=results, exit_code=code, elapsed=time.monotonic() - started, aborted=aborted
            )
        )
        return RunResult(results, code, aborted)

    def _play(self, play: Play, hosts: list[Host], opts: HostRunOptions) -> bool:
        """Run one play; False when a failure threshold stopped the run."""
        live = [h for h in hosts if not self.states[h.name].done]
        self.emit(PlayStarted(play=play.name, hosts=tuple(h.name for h in live)))
        sizes = batch_sizes(play.serial, len(live))
        start = 0
        for number, size in enumerate(sizes, 1):
            batch = live[start : start + size]
            start += size
            self.emit(
                BatchStarted(
                    play=play.name,
                    index=number,
                    count=len(sizes),
                    hosts=tuple(h.name for h in batch),
                )
            )
            before = {h.name: self.states[h.name].done for h in batch}
            self.executor.run_batch(self, play, batch, opts)
            failed = sum(1 for h in batch if self.states[h.name].done and not before[h.name])
            threshold = play.fail_threshold
            if threshold is not None and failed and failed * 100.0 / len(batch) > threshold:
                rest = tuple(h.name for h in live[start:])
                self.emit(
                    BatchAborted(
                        play=play.name,
                        failed=failed,
                        total=len(batch),
                        threshold=threshold,
                        hosts_not_run=rest,
                    )
                )
                return False
        return True

    def run_local(self, play: Play, batch: list[Host], opts: HostRunOptions) -> None:
        """Run ``batch`` in this process's threads (:class:`LocalExecutor`)."""
        workers = min(self.options.forks, len(batch)) or 1
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="host") as pool:
            futures = [pool.submit(self._host, play, host, opts) for host in batch]
            try:
                for future in futures:
                    future.result()  # _host never raises; this only waits
            except BaseException:  # Ctrl-C: hosts stop before their next task
                self._stop.set()
                for future in futures:
                    future.cancel()
                raise

    def _host(self, play: Play, host: Host, opts: HostRunOptions) -> None:
        state = self.states[host.name]
        try:
            HostRunner(
                play,
                state,
                self._scope(host, play, state),
                opts,
                lambda: self._open(host),
                self.emit,
                self._stop,
            ).run()
        except Exception as err:  # noqa: BLE001 - never let one host take down the run
            log.exception("%s: internal error", host.name)
            state.failed += 1
            state.error = state.error or f"internal error: {type(err).__name__}"

    def _open(self, host: Host) -> Connection:
        try:
            return self.connect(host)
        except ConnectError:
            raise
        except AgentError as err:  # e.g. a bad address in the inventory
            raise ConnectError(str(err), host=host.name) from err

    def _close_all(self) -> None:
        for state in self.states.values():
            if state.conn is not None:
                with contextlib.suppress(Exception):
                    state.conn.close()
                state.conn = None
