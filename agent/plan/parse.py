"""Turn a loaded plan file into a :class:`~agent.plan.model.Plan`, checking everything that can
be checked without hosts: keys, module names, argument names and the types of literal values,
template syntax, handler names. Every problem is collected before stopping.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from agent.errors import PlanError, SourcePos
from agent.modules import registry
from agent.modules.args import ArgProblem, check_names, check_value, suggest
from agent.plan.load import PosDict, PosList, load_yaml
from agent.plan.model import PLAY_KEYS, TASK_KEYS, Plan, Play, Task
from agent.plan.vars import is_template, syntax_error

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SERIAL = re.compile(r"^\d+(\.\d+)?%$")


class PlanErrors(PlanError):
    """Several problems in one plan; ``errors`` has each, in file order."""

    def __init__(self, errors: list[PlanError]) -> None:
        self.errors = errors
        first = errors[0]
        more = f"(and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        super().__init__(
            first.message, where=first.where, hint="; ".join(x for x in (first.hint, more) if x)
        )


class _Collector:
    def __init__(self) -> None:
        self.errors: list[PlanError] = []

    def add(self, message: str, where: SourcePos | str, hint: str = "") -> None:
        self.errors.append(PlanError(message, where=where, hint=hint))

    def raise_if_any(self) -> None:
        if self.errors:
            raise PlanErrors(self.errors)


def _where(container: Any, key: Any) -> SourcePos:
    if isinstance(container, (PosDict, PosList)):
        return container.where(key)
    return SourcePos("?")


def _strings(value: Any, what: str, where: SourcePos, errs: _Collector) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    errs.add(f"{what} must be a string or a list of strings", where)
    return ()


def _bool(value: Any, what: str, where: SourcePos, errs: _Collector) -> bool:
    if isinstance(value, bool):
        return value
    errs.add(f"{what} must be true or false, got {value!r}", where)
    return False


def _check_templates(value: Any, where: SourcePos, errs: _Collector) -> None:
    if isinstance(value, str):
        if is_template(value):
            problem = syntax_error(value)
            if problem:
                errs.add(problem, where)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_templates(v, _where(value, i) if isinstance(value, PosList) else where, errs)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_templates(v, _where(value, k) if isinstance(value, PosDict) else where, errs)


def _unknown_key(key: Any, accepted: tuple[str, ...], what: str) -> tuple[str, str]:
    names = ", ".join(accepted)
    return (f"unknown {what} key {key!r}{suggest(str(key), accepted)}", f"accepted: {names}")


def _parse_task(
    raw: Any, pos: SourcePos, targets: set[str], errs: _Collector, *, handler: bool = False
) -> Task | None:
    """One task or handler; ``targets``: what ``notify`` may name (handler names and topics)."""
    kind = "handler" if handler else "task"
    if not isinstance(raw, PosDict):
        errs.add(f"a {kind} must be a mapping", pos)
        return None
    modules = [k for k in raw if isinstance(k, str) and k in registry.REGISTRY]
    for key in raw:
        if key in TASK_KEYS or key in modules:
            continue
        message, hint = _unknown_key(key, TASK_KEYS + tuple(registry.names()), kind)
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
    module_name = modules[0]
    module = registry.get(module_name)
    module_pos = raw.key_pos[module_name]
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
    key_pos = {str(k): given.key_pos[k] for k in given} if isinstance(given, PosDict) else {}
    for found in check_names(module, args):
        errs.add(found.message, key_pos.get(found.arg) or arg_pos.get(found.arg, module_pos))
    problems: list[ArgProblem] = []
    specs = {a.name: a for a in module.args}
    for name, value in args.items():
        if name in specs and value is not None and not _contains_template(value):
            try:
                check_value(specs[name], value)
            except ArgProblem as bad:
                problems.append(bad)
    for found in problems:
        errs.add(found.message, arg_pos.get(found.arg, module_pos))
    for name, value in args.items():
        _check_templates(value, arg_pos.get(name, module_pos), errs)

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

    notify = _strings(raw.get("notify"), "notify", raw.where("notify"), errs)
    for name in notify:
        if name not in targets:
            errs.add(
                f"notify names no handler: {name!r}{suggest(name, sorted(targets))}",
                raw.where("notify"),
                hint=f"handlers and their listen topics: {', '.join(sorted(targets)) or 'none'}",
            )
    listen = _strings(raw.get("listen"), "listen", raw.where("listen"), errs)
    if listen and not handler:
        errs.add("only a handler can listen (tasks notify)", raw.where("listen"))
    if module_name == "meta" and handler:
        errs.add("meta is for tasks, not handlers", module_pos)
    register = raw.get("register")
    if register is not None and (not isinstance(register, str) or not _IDENT.fullmatch(register)):
        errs.add(f"register must be a variable name, got {register!r}", raw.where("register"))
        register = None
    loop = raw.get("loop")
    if loop is not None:
        if isinstance(loop, str) and is_template(loop):
            _check_templates(loop, raw.where("loop"), errs)
        elif not isinstance(loop, list):
            errs.add("loop must be a list or a template giving a list", raw.where("loop"))
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
        register=register if isinstance(register, str) else None,
        loop=loop,
        loop_pos=raw.where("loop") if loop is not None else None,
        tags=_strings(raw.get("tags"), "tags", raw.where("tags"), errs),
        ignore_errors=_bool(
            raw.get("ignore_errors", False), "ignore_errors", raw.where("ignore_errors"), errs
        ),
        become=None if become is None else _bool(become, "become", raw.where("become"), errs),
        listen=listen if handler else (),
    )


def _handler_triggers(raw_handlers: list[Any]) -> set[str]:
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


def _contains_template(value: Any) -> bool:
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, list):
        return any(_contains_template(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_template(v) for v in value.values())
    return False


def _parse_serial(value: Any, where: SourcePos, errs: _Collector) -> tuple[int | str, ...]:
    items = value if isinstance(value, list) else [value]
    out: list[int | str] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and item > 0:
            out.append(item)
        elif isinstance(item, str) and _SERIAL.match(item.strip()) and float(item.strip()[:-1]) > 0:
            out.append(item.strip())
        else:
            errs.add(
                f"serial must be a positive number, a percentage like '25%', or a list of "
                f"them; got {item!r}",
                where,
            )
    return tuple(out)


def _load_vars_file(
    path: str,
    plan_dir: str,
    where: SourcePos,
    errs: _Collector,
) -> PosDict | None:
    full = path if os.path.isabs(path) else os.path.join(plan_dir, path)
    try:
        data = load_yaml(full)
    except PlanError as err:
        errs.errors.append(err if err.where else PlanError(err.message, where=where))
        return None
    if data is None:
        return PosDict(SourcePos(full))
    if not isinstance(data, PosDict):
        errs.add("a vars file must hold a mapping", SourcePos(full, 1, 1))
        return None
    return data


def _parse_play(raw: Any, pos: SourcePos, plan_dir: str, errs: _Collector) -> Play | None:
    if not isinstance(raw, PosDict):
        errs.add("a play must be a mapping", pos)
        return None
    for key in raw:
        if key not in PLAY_KEYS:
            message, hint = _unknown_key(key, PLAY_KEYS, "play")
            errs.add(message, raw.key_pos[key], hint=hint)
    hosts = raw.get("hosts")
    if not isinstance(hosts, str) or not hosts.strip():
        errs.add("a play needs 'hosts' (a host pattern)", raw.where("hosts"))
        hosts = ""
    play_vars = raw.get("vars") or PosDict(raw.pos)
    if not isinstance(play_vars, PosDict):
        errs.add("vars must be a mapping", raw.where("vars"))
        play_vars = PosDict(raw.pos)
    var_pos = {str(k): play_vars.where(k) for k in play_vars}
    _check_templates(play_vars, raw.where("vars"), errs)
    file_vars: dict[str, Any] = {}
    files = _strings(raw.get("vars_files"), "vars_files", raw.where("vars_files"), errs)
    for i, name in enumerate(files):
        where = (
            _where(raw["vars_files"], i)
            if isinstance(raw.get("vars_files"), PosList)
            else raw.where("vars_files")
        )
        loaded = _load_vars_file(name, plan_dir, where, errs)
        if loaded is not None:
            _check_templates(loaded, loaded.pos, errs)
            file_vars.update(loaded)
            var_pos.update({str(k): loaded.where(k) for k in loaded})
    handlers: list[Task] = []
    raw_handlers = raw.get("handlers") or []
    if not isinstance(raw_handlers, list):
        errs.add("handlers must be a list", raw.where("handlers"))
        raw_handlers = []
    names = _handler_triggers(raw_handlers)
    for i, item in enumerate(raw_handlers):
        task = _parse_task(item, _where(raw_handlers, i), names, errs, handler=True)
        if task is not None:
            handlers.append(task)
    tasks: list[Task] = []
    raw_tasks = raw.get("tasks") or []
    if not isinstance(raw_tasks, list):
        errs.add("tasks must be a list", raw.where("tasks"))
        raw_tasks = []
    for i, item in enumerate(raw_tasks):
        task = _parse_task(item, _where(raw_tasks, i), names, errs)
        if task is not None:
            tasks.append(task)
    mfp = raw.get("max_fail_percentage")
    if mfp is not None and (
        isinstance(mfp, bool) or not isinstance(mfp, (int, float)) or not 0 <= mfp <= 100
    ):
        errs.add(
            f"max_fail_percentage must be a number from 0 to 100, got {mfp!r}",
            raw.where("max_fail_percentage"),
        )
        mfp = None
    name = raw.get("name") or hosts
    return Play(
        name=str(name),
        hosts=hosts,
        pos=raw.pos,
        tasks=tuple(tasks),
        handlers=tuple(handlers),
        vars=play_vars,
        file_vars=file_vars,
        var_pos=var_pos,
        become=_bool(raw.get("become", False), "become", raw.where("become"), errs),
        serial=_parse_serial(raw["serial"], raw.where("serial"), errs) if "serial" in raw else (),
        max_fail_percentage=float(mfp) if mfp is not None else None,
        any_errors_fatal=_bool(
            raw.get("any_errors_fatal", False),
            "any_errors_fatal",
            raw.where("any_errors_fatal"),
            errs,
        ),
    )


def parse_plan(data: Any, path: str) -> Plan:
    """Build a :class:`Plan` from loaded YAML.

    Raises:
        PlanErrors: every problem found, each with file:line:col.
    """
    errs = _Collector()
    plan_dir = str(Path(path).parent)
    if not isinstance(data, PosList) or not data:
        raise PlanErrors(
            [
                PlanError(
                    "a plan must be a non-empty list of plays",
                    where=getattr(data, "pos", SourcePos(path)),
                )
            ]
        )
    plays: list[Play] = []
    for i, raw in enumerate(data):
        play = _parse_play(raw, data.where(i), plan_dir, errs)
        if play is not None:
            plays.append(play)
    errs.raise_if_any()
    return Plan(path=path, plays=tuple(plays), plan_dir=plan_dir)


def load_plan(path: str) -> Plan:
    """Load and statically validate the plan file at ``path``.

    Raises:
        PlanError: see :func:`parse_plan` (a :class:`PlanErrors` when several).
    """
    return parse_plan(load_yaml(path), path)
