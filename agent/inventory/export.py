"""The inventory as ``ansible-inventory`` shows it: ``--list`` JSON, ``--graph``, ``--host``.

``--list`` has the same shape and key order as ``ansible-inventory --list`` (ansible-core 2.19):
a ``_meta`` object with ``hostvars`` (each host's merged variables, hosts without variables
left out) and ``profile``; ``all`` with its ``children``; one object per other non-empty group
with ``hosts`` (direct members) and ``children``; JSON with sorted keys and 4-space indents.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from agent.errors import InventoryError
from agent.inventory.inventory import Inventory

# variables ansible-inventory never prints (its INTERNAL_STATIC_VARS)
INTERNAL_VARS = frozenset(
    {
        "ansible_async_path",
        "ansible_collection_name",
        "ansible_config_file",
        "ansible_dependent_role_names",
        "ansible_diff_mode",
        "ansible_facts",
        "ansible_forks",
        "ansible_inventory_sources",
        "ansible_limit",
        "ansible_play_batch",
        "ansible_play_hosts",
        "ansible_play_hosts_all",
        "ansible_play_role_names",
        "ansible_playbook_python",
        "ansible_role_name",
        "ansible_role_names",
        "ansible_run_tags",
        "ansible_skip_tags",
        "ansible_verbosity",
        "ansible_version",
        "inventory_dir",
        "inventory_file",
        "inventory_hostname",
        "inventory_hostname_short",
        "groups",
        "group_names",
        "hostvars",
        "playbook_dir",
        "play_hosts",
        "role_name",
        "role_names",
        "role_path",
        "role_uuid",
    }
)
PROFILE = "inventory_legacy"


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    return str(_plain(key))


def _plain(value: Any) -> Any:
    """A JSON-ready copy of ``value`` (dates as ISO text, keys as strings)."""
    if isinstance(value, dict):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def dumps(value: Any) -> str:
    """JSON the way ansible-inventory writes it."""
    return json.dumps(_plain(value), sort_keys=True, indent=4, ensure_ascii=False)


def host_vars(inventory: Inventory, name: str) -> dict[str, Any]:
    """A host's variables as ansible-inventory prints them.

    Raises:
        InventoryError: no such host.
    """
    host = inventory.hosts.get(name)
    if host is None:
        raise InventoryError(f"unknown host {name!r}")
    return {k: v for k, v in host.vars.items() if k not in INTERNAL_VARS}


def list_data(inventory: Inventory, limit: str | None = None) -> dict[str, Any]:
    """The ``--list`` structure (see the module docstring)."""
    selected = [h.name for h in inventory.select("all", limit)]
    available = set(selected)
    result: dict[str, Any] = {}
    for name in inventory.descendants("all"):
        group = inventory.groups[name]
        entry: dict[str, Any] = {}
        if name != "all":
            hosts = [h for h in group.hosts if h in available]
            if hosts:
                entry["hosts"] = hosts
        if group.children:
            entry["children"] = list(group.children)
        if entry:
            result[name] = entry
    hostvars: dict[str, Any] = {}
    for name in selected:
        variables = host_vars(inventory, name)
        if variables:
            hostvars[name] = variables
    result["_meta"] = {"hostvars": hostvars, "profile": PROFILE}
    return result


def list_json(inventory: Inventory, limit: str | None = None) -> str:
    """``ansible-inventory --list`` output."""
    return dumps(list_data(inventory, limit))


def graph(inventory: Inventory, group: str = "all") -> str:
    """``ansible-inventory --graph [GROUP]`` output.

    Raises:
        InventoryError: ``group`` is not a group.
    """
    if group not in inventory.groups:
        raise InventoryError(f"unknown group {group!r}", hint="--graph takes a group name")
    lines: list[str] = []
    stack: list[tuple[str, int]] = [(group, 0)]
    budget = 1_000_000  # every line costs one; a deep shared DAG cannot run away
    while stack and budget > 0:
        item, depth = stack.pop()
        budget -= 1
        if item.startswith("\x00"):  # a host line
            lines.append(_graph_name(item[1:], depth))
            continue
        lines.append(_graph_name(f"@{item}:", depth))
        node = inventory.groups[item]
        pending: list[tuple[str, int]] = [(child, depth + 1) for child in node.children]
        if item != "all":
            pending.extend(("\x00" + host, depth + 1) for host in node.hosts)
        stack.extend(reversed(pending))
    return "\n".join(lines)


def _graph_name(name: str, depth: int) -> str:
    return "  |" * depth + "--" + name if depth else name
