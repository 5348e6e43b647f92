"""Ansible's INI inventory format.

    lone.example.com                 # before any section: group 'ungrouped'
    [web]
    web[01:03].example.com port=2222 tags="['a', 'b']"
    [web:vars]
    ntp = 10.0.0.1
    [eu:children]
    web

Values are Python literals where they parse as one (``2222`` is an int, ``True`` a bool,
``[1, 2]`` a list), strings otherwise, as in Ansible. ``[g:vars]`` needs ``g`` declared
somewhere in the file (as ``[g]``, ``[g:children]`` or a child); a child named in
``[p:children]`` must be declared too. Lines starting with ``#`` or ``;`` are comments.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from dataclasses import dataclass, field
from typing import Any

from agent.errors import SourcePos
from agent.inventory.builder import Builder
from agent.inventory.problems import Problems
from agent.inventory.ranges import RangeError, expand_entry
from agent.validate import shown

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUPNAME = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
_COMMENT = ("#", ";")
_MAX_LITERAL = 10_000  # longer values stay strings (literal_eval cost is bounded)


@dataclass
class _Pending:
    line: int
    state: str
    parents: list[str] = field(default_factory=list)


def parse_value(text: str) -> Any:
    """An INI value: a Python literal if it is one, else the text itself (Ansible's rule)."""
    if len(text) > _MAX_LITERAL:
        return text
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    if _has_huge_int(value):
        return text  # 0x + 5,000 digits: an int that str() cannot print stays text
    return _plain(value)


def _has_huge_int(value: Any) -> bool:
    stack = [value]
    while stack:  # bounded: the literal is at most _MAX_LITERAL characters
        item = stack.pop()
        if isinstance(item, int) and item.bit_length() > 1024:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
    return False


def _plain_key(key: Any) -> Any:
    if key is None or isinstance(key, (str, int, float, bool)):
        return key
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    return str(key)  # tuples, frozensets, complex: keys must stay hashable


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    return value


class IniInventory:
    """Parse one INI inventory into a :class:`Builder`."""

    def __init__(self, path: str, builder: Builder, problems: Problems) -> None:
        self.path = path
        self.builder = builder
        self.problems = problems
        self.pending: dict[str, _Pending] = {}
        self.group_vars_seen: set[tuple[str, str]] = set()

    def _where(self, line: int, col: int = 0) -> SourcePos:
        return SourcePos(self.path, line, col)

    def parse(self, text: str) -> None:
        group, state = "ungrouped", "hosts"
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line[0] in _COMMENT:
                continue
            col = len(raw) - len(raw.lstrip()) + 1
            match = _SECTION.match(line)
            if match:
                section = self._section(match, number, col)
                if section is None:
                    group, state = "", "skip"  # lines until the next section are ignored
                else:
                    group, state = section
                continue
            if line.startswith("[") and "]" not in line:
                self.problems.add(
                    self._where(number, col),
                    f"unclosed section header {shown(line, 40)}",
                    hint="use [group], [group:vars] or [group:children]",
                )
                group, state = "", "skip"
                continue
            if line.startswith("[") and line.endswith("]"):
                self.problems.add(
                    self._where(number, col),
                    f"invalid section header {shown(line, 40)}",
                    hint="use [group], [group:vars] or [group:children] with no spaces",
                )
                group, state = "", "skip"
                continue
            if state == "hosts":
                self._host_line(group, line, number, col)
            elif state == "vars":
                self._var_line(group, line, number, col)
            elif state == "children":
                self._child_line(group, line, number, col)
        for name, decl in self.pending.items():
            if decl.state == "vars":
                self.problems.add(
                    self._where(decl.line),
                    f"section [{name}:vars] is for group {name!r}, which is never declared",
                )
            else:
                self.problems.add(
                    self._where(decl.line),
                    f"section [{decl.parents[-1]}:children] names group {name!r}, "
                    "which is never declared",
                    hint=f"add a [{name}] section",
                )

    def _section(self, match: re.Match[str], number: int, col: int) -> tuple[str, str] | None:
        name, state = match.group(1), match.group(2) or "hosts"
        if state not in ("hosts", "children", "vars"):
            self.problems.add(
                self._where(number, col),
                f"section [{name}:{state}] has unknown type {state!r}",
                hint="accepted: children, vars",
            )
            return None
        known = name in self.builder.groups
        group = self.builder.add_group(name, self._where(number, col + 1))
        if group is None:
            return None
        if not known and state == "vars" and group not in self.pending:
            self.pending[group] = _Pending(number, "vars")
        decl = self.pending.get(group)
        if decl is not None and state != "vars":
            if decl.state == "children":
                self._resolve_children(group, number)
            else:
                del self.pending[group]
        return group, state

    def _resolve_children(self, group: str, number: int) -> None:
        queue = [group]
        while queue:  # bounded: each pending entry is removed once
            current = queue.pop(0)
            decl = self.pending.pop(current, None)
            if decl is None:
                continue
            for parent in decl.parents:
                self.builder.add_child(parent, current, self._where(decl.line))
                parent_decl = self.pending.get(parent)
                if parent_decl is not None and parent_decl.state == "children":
                    queue.append(parent)

    def _host_line(self, group: str, line: str, number: int, col: int) -> None:
        where = self._where(number, col)
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as err:
            self.problems.add(where, f"cannot parse host line: {err}")
            return
        if not tokens:
            return
        entry = tokens[0]
        if entry.strip() == "---":
            self.problems.add(
                where, "'---' is not a host", hint="is this a YAML file? name it .yml"
            )
            return
        try:
            names, port = expand_entry(entry)
        except RangeError as err:
            self.problems.add(where, str(err))
            return
        variables: dict[str, Any] = {}
        for token in tokens[1:]:
            key, sep, value = token.partition("=")
            if not sep or not key:
                self.problems.add(
                    where,
                    f"expected key=value after host {shown(entry, 40)}, got {shown(token, 24)}",
                )
                return
            if key in variables:
                self.problems.add(where, f"variable {shown(key, 40)} is given twice on this line")
                return
            variables[key] = parse_value(value)
        for name in names:
            if not self.builder.add_host(name, group, port, where):
                break
            for key, value in variables.items():
                self.builder.set_host_var(name, key, value)

    def _var_line(self, group: str, line: str, number: int, col: int) -> None:
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            self.problems.add(
                self._where(number, col), "expected key=value (the line is not shown)"
            )
            return
        if (group, key) in self.group_vars_seen:
            self.problems.add(
                self._where(number, col),
                f"variable {shown(key, 40)} of group {group!r} is set twice in this file",
            )
            return
        self.group_vars_seen.add((group, key))
        self.builder.set_group_var(group, key, parse_value(value), self._where(number, col))

    def _child_line(self, group: str, line: str, number: int, col: int) -> None:
        match = _GROUPNAME.match(line)
        if not match:
            self.problems.add(
                self._where(number, col), "expected a group name (the line is not shown)"
            )
            return
        child = match.group(1)
        if child in self.builder.groups:
            self.builder.add_child(group, child, self._where(number, col))
            return
        decl = self.pending.get(child)  # [child:vars] would have declared it: state is children
        if decl is None:
            self.pending[child] = _Pending(number, "children", [group])
        else:
            decl.parents.append(group)


def parse_ini(text: str, path: str, builder: Builder, problems: Problems) -> None:
    """Parse an INI inventory (see module docstring)."""
    IniInventory(path, builder, problems).parse(text)
