"""Parse one task or handler of a plan into a :class:`~agent.plan.model.Task`: its one module
and that module's arguments (names, and the types of values that hold no template), ``when``,
``notify`` (against the play's handlers), ``listen``, ``register``, ``loop`` and the flags.
Problems are collected, not raised."""

from __future__ import annotations

import re
from typing import Any

from agent.errors import SourcePos
from agent.modules import registry
from agent.modules.args import ArgProblem, check_names, check_value, suggest
from agent.modules.base import Module
from agent.plan.load import PosDict
from agent.plan.model import TASK_KEYS, Task
from agent.plan.problems import (
    Collector,
    boolean,
    check_templates,
    contains_template,
    strings,
    unknown_key,
)
from agent.plan.vars import is_template, syntax_error

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_task(
    raw: Any, pos: SourcePos, targets: set[str], errs: Collector, *, handler: bool = False
) -> Task | None:
    """One task or handler; ``targets``: what ``notify`` may name (handler names and topics)."""
    kind = "handler" if handler else "task"
    if not isinstance(raw, PosDict):
        errs.add(f"a {kind} must be a mapping", pos)
        return None
    module_name = _module_name(raw, kind, errs)
    if module_name is None:
        return None
    module = registry.get(module_name)
    module_pos = raw.key_pos[module_name]
    found = _module_args(raw, module, module_name, errs)
    if found is None:
        return None
    args, arg_pos = found
    _check_args(raw[module_name], module, args, arg_pos, module_pos, errs)
    when = _when(raw, errs)
    notify = _notify(raw, targets, errs)
    listen = strings(raw.get("listen"), "listen", raw.where("listen"), errs)
    if listen and not handler:
        errs.add("only a handler can listen (tasks notify)", raw.where("listen"))
    if module_name == "meta" and handler:
        errs.add("meta is for tasks, not handlers", module_pos)
    register = _register(raw, errs)
    loop = _loop(raw, errs)
    name = raw.get("name", "")
    if not isinstance(name, str):
        errs.add("name must be a string", raw.where("name"))
        name = ""
    become = raw.get("become")
    return Task(
        name=name or f"{module_name}",
        module=module_name,
        args=args,
        pos=raw.pos,
        module_pos=module_pos,
        arg_pos=arg_pos,
        when=when,
        when_pos=raw.where("when") if when else None,
        notify=notify,
        register=register,
        loop=loop,
        loop_pos=raw.where("loop") if loop is not None else None,
        tags=strings(raw.get("tags"), "tags", raw.where("tags"), errs),
        ignore_errors=boolean(
            raw.get("ignore_errors", False), "ignore_errors", raw.where("ignore_errors"), errs
        ),
        become=None if become is None else boolean(become, "become", raw.where("become"), errs),
        listen=listen if handler else (),
    )


def _module_name(raw: PosDict, kind: str, errs: Collector) -> str | None:
    """The task's one module key; every other key must be a task key."""
    modules = [k for k in raw if isinstance(k, str) and k in registry.REGISTRY]
    for key in raw:
        if key in TASK_KEYS or key in modules:
            continue
        message, hint = unknown_key(key, TASK_KEYS + tuple(registry.names()), kind)
        errs.add(
            message,
            raw.key_pos[key],
            hint=f"{kind} keys: {', '.join(TASK_KEYS)}; modules: {', '.join(registry.names())}",
        )
    if len(modules) != 1:
        errs.add(
            f"a {kind} needs exactly one module, found {', '.join(modules) if modules else 'none'}",
            raw.pos,
            hint=f"modules: {', '.join(registry.names())}",
        )
        return None
    return modules[0]


def _module_args(
    raw: PosDict, module: type[Module], module_name: str, errs: Collector
) -> tuple[dict[str, Any], dict[str, SourcePos]] | None:
    """The module's arguments as written (a free-form string or list, a mapping, or nothing)
    and where each is."""
    given = raw[module_name]
    args: dict[str, Any]
    arg_pos: dict[str, SourcePos] = {}
    if isinstance(given, (str, list)) and module.free_form:
        args = {module.free_form: given}
        arg_pos[module.free_form] = raw.where(module_name)
    elif isinstance(given, PosDict):
        args = dict(given)
        arg_pos = {str(k): given.where(k) for k in given}
    elif given is None and not any(a.required for a in module.args):
        args = {}
    else:
        errs.add(f"arguments of module {module_name!r} must be a mapping", raw.where(module_name))
        return None
    return args, arg_pos


def _check_args(
    given: Any,
    module: type[Module],
    args: dict[str, Any],
    arg_pos: dict[str, SourcePos],
    module_pos: SourcePos,
    errs: Collector,
) -> None:
    """Argument names, the types of values without templates, then template syntax."""
    key_pos = {str(k): given.key_pos[k] for k in given} if isinstance(given, PosDict) else {}
    for found in check_names(module, args):
        errs.add(found.message, key_pos.get(found.arg) or arg_pos.get(found.arg, module_pos))
    problems: list[ArgProblem] = []
    specs = {a.name: a for a in module.args}
    for name, value in args.items():
        if name in specs and value is not None and not contains_template(value):
            try:
                check_value(specs[name], value)
            except ArgProblem as bad:
                problems.append(bad)
    for found in problems:
        errs.add(found.message, arg_pos.get(found.arg, module_pos))
    for name, value in args.items():
        check_templates(value, arg_pos.get(name, module_pos), errs)


def _when(raw: PosDict, errs: Collector) -> tuple[str | bool, ...]:
    """The conditions, each a template or a bare expression (checked as ``{{ ... }}``)."""
    when_raw = raw.get("when")
    when: tuple[str | bool, ...] = ()
    if isinstance(when_raw, (str, bool)):
        when = (when_raw,)
    elif isinstance(when_raw, list) and all(isinstance(w, (str, bool)) for w in when_raw):
        when = tuple(when_raw)
    elif when_raw is not None:
        errs.add("when must be a condition or a list of conditions", raw.where("when"))
    for cond in when:
        if isinstance(cond, str):
            text = cond if is_template(cond) else "{{ " + cond + " }}"
            trouble = syntax_error(text)
            if trouble:
                errs.add(trouble, raw.where("when"))
    return when


def _notify(raw: PosDict, targets: set[str], errs: Collector) -> tuple[str, ...]:
    notify = strings(raw.get("notify"), "notify", raw.where("notify"), errs)
    for name in notify:
        if name not in targets:
            errs.add(
                f"notify names no handler: {name!r}{suggest(name, sorted(targets))}",
                raw.where("notify"),
                hint=f"handlers and their listen topics: {', '.join(sorted(targets)) or 'none'}",
            )
    return notify


def _register(raw: PosDict, errs: Collector) -> str | None:
    register = raw.get("register")
    if register is not None and (not isinstance(register, str) or not _IDENT.fullmatch(register)):
        errs.add(f"register must be a variable name, got {register!r}", raw.where("register"))
        return None
    return register if isinstance(register, str) else None


def _loop(raw: PosDict, errs: Collector) -> Any:
    loop = raw.get("loop")
    if loop is not None:
        if isinstance(loop, str) and is_template(loop):
            check_templates(loop, raw.where("loop"), errs)
        elif not isinstance(loop, list):
            errs.add("loop must be a list or a template giving a list", raw.where("loop"))
    return loop


def handler_triggers(raw_handlers: list[Any]) -> set[str]:
    """Names and listen topics of the handlers as written (before they are parsed: a handler
    may notify one defined after it)."""
    found: set[str] = set()
    for raw in raw_handlers:
        if not isinstance(raw, dict):
            continue
        modules = [k for k in raw if isinstance(k, str) and k in registry.REGISTRY]
        name = raw.get("name") or (modules[0] if modules else None)
        if isinstance(name, str):
            found.add(name)
        listen = raw.get("listen")
        for topic in [listen] if isinstance(listen, str) else listen or []:
            if isinstance(topic, str):
                found.add(topic)
    return found
