"""The loaded inventory: hosts and groups in declaration order, and host selection."""

from __future__ import annotations

from agent.errors import InventoryError
from agent.inventory.model import Group, Host


class Inventory:
    """Hosts and groups as loaded (see :func:`agent.inventory.load`).

    ``hosts`` and ``groups`` are in declaration order; ``groups`` always holds ``all`` and
    ``ungrouped``. Selections are in Ansible's inventory order (see :meth:`group_hosts`).
    """

    def __init__(
        self, hosts: dict[str, Host], groups: dict[str, Group], sources: tuple[str, ...] = ()
    ) -> None:
        self.hosts = hosts
        self.groups = groups
        self.sources = sources

    def descendants(self, group: str) -> list[str]:
        """``group`` and every group below it (breadth first, each once)."""
        seen = [group]
        index = 0
        while index < len(seen):  # bounded: each group is appended once
            for child in self.groups[seen[index]].children:
                if child not in seen:
                    seen.append(child)
            index += 1
        return seen

    def group_hosts(self, group: str) -> list[str]:
        """Names of the hosts in ``group`` or below it, in inventory order: the group's own
        hosts in file order, then those of its child groups, breadth first (Ansible's order).
        """
        names: list[str] = []
        seen: set[str] = set()
        for name in self.descendants(group):
            for host in self.groups[name].hosts:
                if host not in seen:
                    seen.add(host)
                    names.append(host)
        return names

    def select(self, pattern: str, limit: str | None = None) -> list[Host]:
        """Hosts matching ``pattern`` and, if given, ``limit``, in inventory order.

        Patterns: see :mod:`agent.inventory.patterns`.

        Raises:
            InventoryError: a malformed pattern (a PatternError, exit 2), a plain name that is
                neither a host nor a group (a typo would otherwise select nothing silently), or
                a ``limit`` that matches no host at all.
        """
        from agent.inventory.patterns import evaluate

        names = evaluate(self, pattern)
        if limit is not None:
            allowed = set(evaluate(self, limit, what="--limit"))
            if not allowed:
                shown = repr(limit) if len(repr(limit)) <= 80 else repr(limit)[:77] + "..."
                raise InventoryError(f"--limit {shown} matches no host")
            names = [n for n in names if n in allowed]
        return [self.hosts[n] for n in names]
