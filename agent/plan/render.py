"""Render a task for one host, and check a whole plan per host before anything runs.

:func:`render_args` turns a task's written arguments into validated module params for one
host. ``argv`` arguments given as a string are split into words *before* rendering, so a
variable's value is one argument whatever it holds. :func:`check_plan` does, for every
(play, host), everything that can fail before a run: undefined variables, template failures
and argument types, with file:line:col and the host. Names that only exist once the run is
under way (``register`` results, ``item``) are stood in for by a lenient placeholder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2

from agent.errors import AgentError, PlanError, SourcePos
from agent.modules import registry
from agent.modules.args import ArgProblem, check_args, check_value, split_argv
from agent.modules.base import Arg
from agent.plan.model import Plan, Play, Task
from agent.plan.parse import PlanErrors
from agent.plan.vars import Scope, is_template, names_used

MAX_ERRORS = 50


@dataclass(frozen=True)
class Selection:
    """Which tasks run: ``tags`` (any of, plus 'always') minus ``skip_tags``."""

    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()

    def selects(self, task: Task) -> bool:
        tags = set(task.tags)
        if tags & self.skip_tags:
            return False
        if not self.tags:
            return True
        return bool(tags & self.tags) or "always" in tags or ("all" in self.tags)


def _uses(value: Any, names: frozenset[str]) -> bool:
    if isinstance(value, str):
        return is_template(value) and bool(names_used(value) & names)
    if isinstance(value, list):
        return any(_uses(v, names) for v in value)
    if isinstance(value, dict):
        return any(_uses(v, names) for v in value.values())
    return False


def render_args(
    task: Task,
    scope: Scope,
    *,
    placeholders: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Render and validate ``task``'s arguments for ``scope``'s host.

    Returns:
        The params, and whether they are final (False when a placeholder was used, in which
        case types were not checked).

    Raises:
        PlanError: an undefined variable, a failing template, a wrong argument (each names
            the argument's file:line:col and the host).
    """
    module = registry.get(task.module)
    specs = {a.name: a for a in module.args}
    extra = dict(placeholders or {})
    deferred = frozenset(extra)
    final = True
    rendered: dict[str, Any] = {}
    for name, raw in task.args.items():
        where = task.where(name)
        uses_deferred = _uses(raw, deferred)
        final = final and not uses_deferred
        spec = specs.get(name)
        if spec is not None and spec.type == "argv" and isinstance(raw, str):
            try:
                words = split_argv(raw)
            except ValueError as err:
                raise PlanError(f"argument {name!r}: {err}", where=where) from None
            rendered[name] = [_text(scope.render_text(w, where, extra=extra)) for w in words]
        elif spec is not None and spec.type == "argv" and isinstance(raw, list):
            rendered[name] = [_text(scope.render(w, where, extra=extra)) for w in raw]
        else:
            rendered[name] = scope.render(raw, where, extra=extra)
        if spec is not None and not uses_deferred and rendered[name] is not None:
            _check_one(spec, rendered[name], task, scope.host)
    if not final:
        return rendered, False
    params, problems = check_args(module, rendered)
    if problems:
        first = problems[0]
        raise PlanError(f"{first.message} (host {scope.host})", where=task.where(first.arg or None))
    try:
        module.check_for_host(params, scope.view(), scope.host)
    except PlanError:
        raise
    except AgentError as err:
        raise PlanError(str(err), where=task.pos) from None
    return params, True


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _check_one(spec: Arg, value: Any, task: Task, host: str) -> None:
    try:
        check_value(spec, value)
    except ArgProblem as problem:
        raise PlanError(f"{problem.message} (host {host})", where=task.where(problem.arg)) from None


def render_loop(
    task: Task,
    scope: Scope,
    *,
    placeholders: Mapping[str, Any] | None = None,
) -> list[Any]:
    """The items of ``task.loop`` for this host (``[None]`` when the task has no loop).

    Raises:
        PlanError: the loop does not render to a list.
    """
    if task.loop is None:
        return [None]
    where = task.loop_pos or task.pos
    items = scope.render(task.loop, where, extra=placeholders or {})
    if isinstance(items, jinja2.Undefined):
        return []
    if not isinstance(items, list):
        raise PlanError(
            f"loop must give a list, got {type(items).__name__} for host {scope.host}", where=where
        )
    return items


def condition(
    task: Task,
    scope: Scope,
    *,
    placeholders: Mapping[str, Any] | None = None,
) -> bool:
    """Whether every ``when`` condition holds for this host.

    Raises:
        PlanError: a condition fails to evaluate.
    """
    where = task.when_pos or task.pos
    return all(scope.evaluate(cond, where, extra=placeholders or {}) for cond in task.when)


def _lenient() -> Any:
    return jinja2.ChainableUndefined(name="registered result")


def check_plan(
    plan: Plan, scopes: Callable[[Play], Iterable[Scope]], selection: Selection = Selection()
) -> None:
    """Check every play for every one of its hosts before anything runs.

    Args:
        plan: the statically valid plan.
        scopes: gives, for a play, a fresh :class:`Scope` per selected host.
        selection: tags; tasks not selected are not checked.

    Raises:
        PlanErrors: every problem found (up to :data:`MAX_ERRORS`).
    """
    errors: list[PlanError] = []
    seen: set[tuple[str, str]] = set()
    registered = frozenset(
        t.register for p in plan.plays for t in (*p.tasks, *p.handlers) if t.register
    )
    for play in plan.plays:
        tasks = [t for t in play.tasks if selection.selects(t)] + list(play.handlers)
        for scope in scopes(play):
            base = {n: _lenient() for n in registered}
            for task in tasks:
                ph = dict(base)
                if task.loop is not None:
                    ph["item"] = _lenient()
                try:
                    render_loop(task, scope, placeholders=base)
                    condition(task, scope, placeholders=ph)
                    render_args(task, scope, placeholders=ph)
                except PlanErrors as many:
                    _add(errors, seen, many.errors)
                except PlanError as err:
                    _add(errors, seen, [err])
                if len(errors) >= MAX_ERRORS:
                    raise PlanErrors(errors)
    if errors:
        raise PlanErrors(errors)


def _add(errors: list[PlanError], seen: set[tuple[str, str]], new: list[PlanError]) -> None:
    for err in new:
        key = (str(err.where), err.message)
        if key not in seen:
            seen.add(key)
            errors.append(err)


def scope_for(
    host: str,
    host_vars: Mapping[str, Any],
    groups: Iterable[str],
    play: Play,
    extra_vars: Mapping[str, Any],
    registered: Mapping[str, Any] | None = None,
) -> Scope:
    """The variable scope of ``host`` in ``play``: inventory < play vars < vars_files <
    registered < extra vars, plus ``inventory_hostname`` and ``group_names``."""
    magic = {
        "inventory_hostname": host,
        "group_names": sorted(g for g in groups if g not in ("all", "ungrouped")),
    }
    positions: dict[str, SourcePos | str] = {**play.var_pos}
    return Scope(
        host,
        [
            dict(host_vars),
            dict(play.vars),
            dict(play.file_vars),
            dict(registered or {}),
            dict(extra_vars),
            magic,
        ],
        where=lambda name: positions.get(name),
    )
