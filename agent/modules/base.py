"""The module interface: argument specs, :class:`Change` values, and :class:`Module`.

A module converges one resource. The runner drives it in three steps (STYLE.md section 1):

1. :meth:`Module.gather` reads facts through a :class:`~agent.transport.base.Connection`
   (stat a file, read it, run ``systemctl is-active``...).
2. :meth:`Module.plan` is a pure function of ``(params, facts, ctx)`` returning a list of
   :class:`Change` values; an empty list means "already in state". ``ctx.now`` is the clock.
3. The runner's :class:`Applier` applies the changes in order through the connection and
   records how to undo each one (unless ``ctx.check``: then nothing is applied and the list is
   what check mode prints and diff mode renders).

A module that must talk to the outside between facts and changes (the certificate module asks a
CA) overrides :meth:`Module.run`, which by default is gather -> plan -> apply. An override must
honour ``ctx.check`` (change nothing anywhere) and return a :class:`ModuleResult`.

Arguments are declared as a tuple of :class:`Arg`; the plan validator checks every task
against it before anything runs (see :func:`agent.modules.args.check_args`). Modules are found
by name in :data:`agent.modules.registry.REGISTRY`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

from agent.errors import AgentError
from agent.transport.base import Connection, Result
from agent.transport.changes import (
    Change,
    MakeDir,
    NotifyHandler,
    RemovePath,
    RunCommand,
    SetAttributes,
    SwapSymlink,
    WriteFile,
    file_diff,
)

__all__ = [
    "Applier",
    "Arg",
    "ArgType",
    "Change",
    "Context",
    "MakeDir",
    "Module",
    "ModuleError",
    "ModuleResult",
    "NotifyHandler",
    "RemovePath",
    "RunCommand",
    "SetAttributes",
    "SwapSymlink",
    "WriteFile",
    "file_diff",
]

ArgType = Literal["str", "int", "bool", "list", "dict", "path", "mode", "argv", "raw"]
"""Argument types. ``path``: absolute path string; ``mode``: octal permission bits given as
``"0644"``/``"u=rw,..."``-free octal text or an int; ``argv``: a list of strings, or a string
split like a shell would *before* templating (so a variable's value stays one argument);
``raw``: anything YAML can hold."""


@dataclass(frozen=True)
class Arg:
    """One argument a module accepts."""

    name: str
    type: ArgType = "str"
    required: bool = False
    default: Any = None
    choices: tuple[Any, ...] = ()
    elements: ArgType | None = None  # element type for ``list``
    secret: bool = False  # value never shown in messages, events or diffs
    help: str = ""


class ModuleError(AgentError):
    """A module cannot bring a host to the state asked for (``where`` is the host)."""

    def __init__(self, message: str, *, host: str, hint: str = "") -> None:
        self.host = host
        super().__init__(message, where=host, hint=hint)


# -- changes: the shared vocabulary (agent.transport.changes), re-exported for modules ----------

# -- context and results ---------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What a module may know besides its params and facts.

    Attributes:
        host: inventory name of the host.
        now: the run's clock (timezone-aware UTC); modules never read the clock themselves.
        check: check mode: change nothing anywhere (no host, no CA, no local state).
        diff: diff mode is on (modules may include ``before`` content in changes).
        become: run commands with privilege escalation.
        vars: the host's variables (inventory < play < vars_files < extra vars, registered).
        plan_dir: directory of the plan file, for controller-side ``src`` files.
        render: renders a jinja2 template text with the host's variables (StrictUndefined);
            ``render(text, source_name)``; raises PlanError naming the source on errors.
    """

    host: str
    now: datetime
    check: bool = False
    diff: bool = False
    become: bool = False
    vars: Mapping[str, Any] = field(default_factory=dict, repr=False)
    plan_dir: str = "."
    render: Callable[[str, str], str] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ModuleResult:
    """Outcome of one module run on one host.

    ``changes`` are those planned (applied unless in check mode); ``data`` is what ``register``
    stores besides ``changed``/``failed`` (e.g. ``rc``, ``stdout``); ``msg`` a short note.
    """

    changes: tuple[Change, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    msg: str = ""

    @property
    def changed(self) -> bool:
        return any(
            c.alters_host and not (isinstance(c, RunCommand) and not c.changed)
            for c in self.changes
        )

    @property
    def notify(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.changes if isinstance(c, NotifyHandler))


class Applier(Protocol):
    """Applies changes to one host and keeps an undo journal (implemented in
    :mod:`agent.modules.apply`)."""

    def apply(self, changes: Sequence[Change], *, become: bool = False) -> list[Result | None]:
        """Apply ``changes`` in order; returns the :class:`Result` of each RunCommand (None for
        the others).

        Raises:
            CommandError: a command or file operation failed (earlier changes stay applied;
                call :meth:`rollback` to undo them).
        """
        ...

    def rollback(self) -> list[str]:
        """Undo every change applied so far, newest first; returns what could not be undone."""
        ...


# -- the module ------------------------------------------------------------------------------


class Module(abc.ABC):
    """One kind of desired state. Subclasses set ``name`` and ``args`` and implement
    :meth:`gather` and :meth:`plan` (or override :meth:`run`)."""

    name: ClassVar[str]
    args: ClassVar[tuple[Arg, ...]] = ()
    #: The argument a plain string stands for (``command: echo hi`` is ``cmd: echo hi``).
    free_form: ClassVar[str | None] = None
    #: One task using the module, as plan YAML (``origin-agent doc MODULE`` prints it; a unit
    #: test validates it against ``args``).
    example: ClassVar[str] = ""

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[str]:
        """Cross-argument validation after each argument was checked (default: none)."""
        return []

    @classmethod
    def check_for_host(
        cls, params: Mapping[str, Any], variables: Mapping[str, Any], host: str
    ) -> None:
        """Validation that needs the host's variables, run for every host before anything
        runs, in ``--check`` too (default: none).

        Raises:
            AgentError: the first problem, in one line naming the host.
        """
        return None

    def gather(self, conn: Connection, params: Mapping[str, Any], ctx: Context) -> Any:
        """Read the facts :meth:`plan` needs.

        Raises:
            CommandError: a fact could not be read.
        """
        return None

    @abc.abstractmethod
    def plan(self, params: Mapping[str, Any], facts: Any, ctx: Context) -> list[Change]:
        """Pure: the changes that bring the host from ``facts`` to the state ``params`` ask for.

        Raises:
            AgentError: the desired state cannot be reached from these facts (e.g. a path
                that must be a directory is a file).
        """

    def result_data(self, results: Sequence[Result | None]) -> dict[str, Any]:
        """What ``register`` stores from the applied changes (default: last command output)."""
        last = next((r for r in reversed(results) if r is not None), None)
        if last is None:
            return {}
        return {
            "rc": last.exit_code,
            "stdout": last.stdout,
            "stderr": last.stderr,
            "stdout_lines": last.stdout.splitlines(),
        }

    def run(
        self, conn: Connection, params: Mapping[str, Any], ctx: Context, applier: Applier
    ) -> ModuleResult:
        """Gather, plan, and (unless ``ctx.check``) apply.

        Raises:
            AgentError: the host cannot be brought to state; the runner marks it failed.
        """
        facts = self.gather(conn, params, ctx)
        changes = self.plan(params, facts, ctx)
        results: list[Result | None] = []
        if changes and not ctx.check:
            results = applier.apply(changes, become=ctx.become)
        return ModuleResult(changes=tuple(changes), data=self.result_data(results))
