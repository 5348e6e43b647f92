"""Inventory model: hosts, groups, and how to reach a host.

This is the contract between the inventory loader and everything that uses hosts (runner,
transport factory, lab). Loaders live beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.transport.spec import ConnectionSpec

__all__ = ["ConnectionSpec", "Group", "Host"]


@dataclass
class Host:
    """One host; ``vars`` are the merged inventory variables (all < parents < child < host <
    host_vars)."""

    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # every group it belongs to, incl. "all"


@dataclass
class Group:
    name: str
    hosts: list[str] = field(default_factory=list)  # direct members, in file order
    children: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
