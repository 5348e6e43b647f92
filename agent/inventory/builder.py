"""Mutable inventory graph filled in by the YAML and INI parsers, then reconciled.

It mirrors Ansible's rules: ``all`` and ``ungrouped`` always exist; a group without parents
becomes a child of ``all``; a host in no group but ``all`` lands in ``ungrouped``; adding a
child group that is also an ancestor is a loop and is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agent.errors import SourcePos
from agent.inventory.problems import Problems
from agent.validate import shown

_BAD_HOST = re.compile(r"[\s,\x00-\x1f\x7f]")
_BAD_GROUP = re.compile(r"[\s,:\[\]\x00-\x1f\x7f]")


@dataclass
class GroupData:
    name: str
    hosts: list[str] = field(default_factory=list)
    members: set[str] = field(default_factory=set, repr=False, compare=False)  # = set(hosts)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    priority: int = 1


@dataclass
class HostData:
    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # direct groups, in the order added


def _offending(name: str, bad: re.Pattern[str]) -> str:
    """The first character of ``name`` that ``bad`` finds, quoted (``':'``, ``'\\n'``)."""
    found = bad.search(name)
    return repr(found.group()) if found else repr(name[0])


# An invalid name is not echoed: the problem names file:line:col, and a file given by mistake
# (``-i /etc/shadow``) would otherwise print its lines, password hashes included.
def host_name_problem(name: object) -> str:
    """Why ``name`` cannot be a host name, or ``""``."""
    if not isinstance(name, str):
        return f"host name {shown(name, 40)} must be a string (quote it)"
    if not name:
        return "empty host name"
    if _BAD_HOST.search(name):
        return (
            f"a host name contains {_offending(name, _BAD_HOST)} "
            "(no whitespace, comma or control character)"
        )
    return ""


def group_name_problem(name: object) -> str:
    """Why ``name`` cannot be a group name, or ``""``."""
    if not isinstance(name, str):
        return f"group name {shown(name, 40)} must be a string (quote it)"
    if not name:
        return "empty group name"
    if _BAD_GROUP.search(name) or name[0] in "!&~@":
        return (
            f"a group name contains {_offending(name, _BAD_GROUP)} (no whitespace, "
            "one of ',:[]' or a control character, and no leading '!&~@')"
        )
    return ""


class Builder:
    """Groups and hosts as the parsers declare them, in declaration order."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.groups: dict[str, GroupData] = {
            "all": GroupData("all"),
            "ungrouped": GroupData("ungrouped"),
        }
        self.hosts: dict[str, HostData] = {}
        self.add_child("all", "ungrouped", SourcePos("<builtin>"))

    def add_group(self, name: object, where: SourcePos) -> str | None:
        """Declare a group (idempotent); None if the name is unusable (problem recorded)."""
        problem = group_name_problem(name)
        if problem:
            self.problems.add(where, problem)
            return None
        assert isinstance(name, str)
        if name not in self.groups:
            self.groups[name] = GroupData(name)
        return name

    def add_host(self, name: str, group: str | None, port: int | None, where: SourcePos) -> bool:
        """Declare a host, optionally in ``group``; a ``name:port`` port sets ``ansible_port``."""
        problem = host_name_problem(name)
        if problem:
            self.problems.add(where, problem)
            return False
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = HostData(name)
            if port is not None:
                host.vars["ansible_port"] = port
        if group is not None:
            self._join(host, self.groups[group])
        return True

    def _join(self, host: HostData, group: GroupData) -> None:
        if host.name not in group.members:  # a set: joining N hosts is linear, not quadratic
            group.members.add(host.name)
            group.hosts.append(host.name)
        if group.name not in host.groups:
            host.groups.append(group.name)

    def ancestors(self, name: str) -> list[str]:
        """Every group above ``name`` (breadth first, each once)."""
        seen: list[str] = []
        queue = list(self.groups[name].parents)
        while queue:  # bounded: each group is visited once
            current = queue.pop(0)
            if current in seen:
                continue
            seen.append(current)
            queue.extend(self.groups[current].parents)
        return seen

    def add_child(self, parent: str, child: str, where: SourcePos) -> bool:
        """Make ``child`` a child group of ``parent``; refuses loops (problem recorded)."""
        if child == "all":
            self.problems.add(where, f"group 'all' cannot be a child of {parent!r}")
            return False
        if child == parent or child in self.ancestors(parent):
            self.problems.add(
                where, f"adding group {child!r} as a child of {parent!r} creates a loop"
            )
            return False
        pg, cg = self.groups[parent], self.groups[child]
        if child not in pg.children:
            pg.children.append(child)
        if parent not in cg.parents:
            cg.parents.append(parent)
        return True

    def set_group_var(self, group: str, key: str, value: Any, where: SourcePos) -> None:
        if key == "ansible_group_priority":
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                self.problems.add(
                    where, f"ansible_group_priority must be an integer, not {value!r}"
                )
                return
            try:
                self.groups[group].priority = int(value)
            except ValueError:
                self.problems.add(
                    where, f"ansible_group_priority must be an integer, not {value!r}"
                )
            return
        self.groups[group].vars[key] = value

    def set_host_var(self, host: str, key: str, value: Any) -> None:
        self.hosts[host].vars[key] = value

    def reconcile(self) -> None:
        """Apply Ansible's rules once every source is parsed (see module docstring)."""
        for name, group in self.groups.items():
            if name != "all" and not group.parents:
                self.add_child("all", name, SourcePos("<builtin>"))
        ungrouped = self.groups["ungrouped"]
        above: dict[str, list[str]] = {}  # ancestors per group, computed once
        leaving: set[str] = set()
        for host in self.hosts.values():
            member = set(host.groups)
            for g in host.groups:
                if g not in above:
                    above[g] = self.ancestors(g)
                member.update(above[g])
            if "ungrouped" in host.groups:
                if member - {"all", "ungrouped"}:
                    leaving.add(host.name)
                    host.groups.remove("ungrouped")
            elif not member - {"all"}:
                self._join(host, ungrouped)
        if leaving:
            ungrouped.hosts = [h for h in ungrouped.hosts if h not in leaving]
            ungrouped.members -= leaving

    def depths(self) -> dict[str, int]:
        """Longest distance of each group from ``all`` (the graph has no loops)."""
        depth: dict[str, int] = {"all": 0}
        order: list[str] = []
        state: dict[str, int] = {}
        for start in self.groups:  # iterative DFS post-order over parents
            if start in state:
                continue
            stack: list[tuple[str, int]] = [(start, 0)]
            while stack:
                name, idx = stack.pop()
                parents = self.groups[name].parents
                if idx == 0:
                    if name in state:
                        continue
                    state[name] = 1
                if idx < len(parents):
                    stack.append((name, idx + 1))
                    if parents[idx] not in state:
                        stack.append((parents[idx], 0))
                else:
                    state[name] = 2
                    order.append(name)
        for name in order:
            if name != "all":
                parents = self.groups[name].parents
                depth[name] = max((depth.get(p, 0) + 1 for p in parents), default=0)
        return depth
