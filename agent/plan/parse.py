"""Turn a loaded plan file into a :class:`~agent.plan.model.Plan`, checking everything that can
be checked without hosts: keys, module names, argument names and the types of literal values,
template syntax, handler names. Every problem is collected before stopping. Tasks are parsed
by :mod:`agent.plan.task`; the collector and value checks are in :mod:`agent.plan.problems`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from agent.errors import PlanError, SourcePos
from agent.plan.load import PosDict, PosList, load_yaml
from agent.plan.model import PLAY_KEYS, Plan, Play, Task
from agent.plan.problems import Collector, boolean, check_templates, strings, unknown_key, where_of
from agent.plan.problems import PlanErrors as PlanErrors
from agent.plan.task import handler_triggers, parse_task

_SERIAL = re.compile(r"^\d+(\.\d+)?%$")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _check_names(mapping: PosDict, errs: Collector) -> None:
    """Every key of play ``vars`` or a vars file is a variable name. The name is not shown:
    ``vars_files: [/etc/shadow]`` would print password hashes; the position says which."""
    for key in mapping:
        if not isinstance(key, str) or not _VAR_NAME.fullmatch(key):
            errs.add(
                "invalid variable name (letters, digits and '_')",
                mapping.key_pos.get(key, mapping.pos),
            )


def _parse_serial(value: Any, where: SourcePos, errs: Collector) -> tuple[int | str, ...]:
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
    errs: Collector,
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


def _parse_play(raw: Any, pos: SourcePos, plan_dir: str, errs: Collector) -> Play | None:
    if not isinstance(raw, PosDict):
        errs.add("a play must be a mapping", pos)
        return None
    for key in raw:
        if key not in PLAY_KEYS:
            message, hint = unknown_key(key, PLAY_KEYS, "play")
            errs.add(message, raw.key_pos[key], hint=hint)
    hosts = raw.get("hosts")
    if not isinstance(hosts, str) or not hosts.strip():
        errs.add("a play needs 'hosts' (a host pattern)", raw.where("hosts"))
        hosts = ""
    play_vars, file_vars, var_pos = _play_vars(raw, plan_dir, errs)
    raw_handlers = _list_of(raw, "handlers", errs)
    names = handler_triggers(raw_handlers)
    handlers = _parse_tasks(raw_handlers, names, errs, handler=True)
    tasks = _parse_tasks(_list_of(raw, "tasks", errs), names, errs)
    mfp = _max_fail_percentage(raw, errs)
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
        become=boolean(raw.get("become", False), "become", raw.where("become"), errs),
        serial=_parse_serial(raw["serial"], raw.where("serial"), errs) if "serial" in raw else (),
        max_fail_percentage=float(mfp) if mfp is not None else None,
        any_errors_fatal=boolean(
            raw.get("any_errors_fatal", False),
            "any_errors_fatal",
            raw.where("any_errors_fatal"),
            errs,
        ),
    )


def _play_vars(
    raw: PosDict, plan_dir: str, errs: Collector
) -> tuple[PosDict, dict[str, Any], dict[str, SourcePos]]:
    """The play's ``vars``, the merged ``vars_files``, and where each variable was set."""
    play_vars = raw.get("vars") or PosDict(raw.pos)
    if not isinstance(play_vars, PosDict):
        errs.add("vars must be a mapping", raw.where("vars"))
        play_vars = PosDict(raw.pos)
    var_pos = {str(k): play_vars.where(k) for k in play_vars}
    _check_names(play_vars, errs)
    check_templates(play_vars, raw.where("vars"), errs)
    file_vars: dict[str, Any] = {}
    files = strings(raw.get("vars_files"), "vars_files", raw.where("vars_files"), errs)
    for i, name in enumerate(files):
        where = (
            where_of(raw["vars_files"], i)
            if isinstance(raw.get("vars_files"), PosList)
            else raw.where("vars_files")
        )
        loaded = _load_vars_file(name, plan_dir, where, errs)
        if loaded is not None:
            _check_names(loaded, errs)
            check_templates(loaded, loaded.pos, errs)
            file_vars.update(loaded)
            var_pos.update({str(k): loaded.where(k) for k in loaded})
    return play_vars, file_vars, var_pos


def _list_of(raw: PosDict, key: str, errs: Collector) -> list[Any]:
    """``raw[key]`` if it is a list (empty when absent, or with a problem when not a list)."""
    items = raw.get(key) or []
    if not isinstance(items, list):
        errs.add(f"{key} must be a list", raw.where(key))
        return []
    return items


def _parse_tasks(
    items: list[Any], targets: set[str], errs: Collector, *, handler: bool = False
) -> list[Task]:
    parsed: list[Task] = []
    for i, item in enumerate(items):
        task = parse_task(item, where_of(items, i), targets, errs, handler=handler)
        if task is not None:
            parsed.append(task)
    return parsed


def _max_fail_percentage(raw: PosDict, errs: Collector) -> Any:
    mfp = raw.get("max_fail_percentage")
    if mfp is not None and (
        isinstance(mfp, bool) or not isinstance(mfp, (int, float)) or not 0 <= mfp <= 100
    ):
        errs.add(
            f"max_fail_percentage must be a number from 0 to 100, got {mfp!r}",
            raw.where("max_fail_percentage"),
        )
        return None
    return mfp


def parse_plan(data: Any, path: str) -> Plan:
    """Build a :class:`Plan` from loaded YAML.

    Raises:
        PlanErrors: every problem found, each with file:line:col.
    """
    errs = Collector()
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
