"""Plans as typed values: :class:`Plan` of :class:`Play` of :class:`Task` (handlers are tasks).

Values that may hold templates (module arguments, ``when``, ``loop``, play vars) are kept as
written and rendered per host by :mod:`agent.plan.vars`; positions travel with them so every
error can name file:line:col.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.errors import SourcePos

TASK_KEYS = (
    "name",
    "when",
    "notify",
    "register",
    "loop",
    "tags",
    "ignore_errors",
    "become",
    "listen",
)
PLAY_KEYS = (
    "name",
    "hosts",
    "vars",
    "vars_files",
    "become",
    "serial",
    "max_fail_percentage",
    "any_errors_fatal",
    "tasks",
    "handlers",
)


@dataclass(frozen=True)
class Task:
    """One task (or handler): a module with its arguments and the keywords around it."""

    name: str
    module: str
    args: Mapping[str, Any]  # as written (templates unrendered); PosDict keeps positions
    pos: SourcePos
    module_pos: SourcePos
    arg_pos: Mapping[str, SourcePos] = field(default_factory=dict)
    when: tuple[str | bool, ...] = ()
    when_pos: SourcePos | None = None
    notify: tuple[str, ...] = ()
    register: str | None = None
    loop: Any = None  # None, a list, or a template string giving a list
    loop_pos: SourcePos | None = None
    tags: tuple[str, ...] = ()
    ignore_errors: bool = False
    become: bool | None = None
    listen: tuple[str, ...] = ()  # handlers only: topics that notify it besides its name

    @property
    def triggers(self) -> frozenset[str]:
        """What a ``notify`` may name to run this handler: its name and its topics."""
        return frozenset((self.name, *self.listen))

    @property
    def flushes_handlers(self) -> bool:
        return self.module == "meta" and self.args.get("action") == "flush_handlers"

    def where(self, arg: str | None = None) -> SourcePos:
        """Position of an argument's value, else of the module key."""
        if arg is not None and arg in self.arg_pos:
            return self.arg_pos[arg]
        return self.module_pos


@dataclass(frozen=True)
class Play:
    """A group of hosts and what to do on them."""

    name: str
    hosts: str
    pos: SourcePos
    tasks: tuple[Task, ...] = ()
    handlers: tuple[Task, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)
    file_vars: Mapping[str, Any] = field(default_factory=dict)  # merged vars_files
    var_pos: Mapping[str, SourcePos] = field(default_factory=dict)
    become: bool = False
    serial: tuple[int | str, ...] = ()  # empty: all hosts in one batch
    max_fail_percentage: float | None = None
    any_errors_fatal: bool = False

    @property
    def fail_threshold(self) -> float | None:
        """Largest failed share (percent) of a batch that lets the next batch start."""
        if self.any_errors_fatal:
            return 0.0
        return self.max_fail_percentage

    def registered_names(self) -> frozenset[str]:
        return frozenset(t.register for t in (*self.tasks, *self.handlers) if t.register)


@dataclass(frozen=True)
class Plan:
    path: str
    plays: tuple[Play, ...]
    plan_dir: str = "."


def batch_sizes(serial: tuple[int | str, ...], total: int) -> list[int]:
    """Split ``total`` hosts into batch sizes per ``serial`` (numbers or percentages; the last
    value repeats). Every batch has at least one host.

    >>> batch_sizes((1, "50%"), 5)
    [1, 2, 2]
    """
    if total <= 0:
        return []
    if not serial:
        return [total]
    sizes: list[int] = []
    left = total
    i = 0
    while left > 0:
        spec = serial[min(i, len(serial) - 1)]
        if isinstance(spec, str) and spec.endswith("%"):
            size = int(total * float(spec[:-1]) / 100)
        else:
            size = int(spec)
        size = max(1, min(size, left))
        sizes.append(size)
        left -= size
        i += 1
    return sizes
