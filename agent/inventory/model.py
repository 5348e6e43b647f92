"""Inventory model: hosts, groups, and how to reach a host.

This is the contract between the inventory loader and everything that uses hosts (runner,
transport factory, lab). Loaders live beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ConnectionSpec:
    """How to reach one host, resolved from its variables (our names or Ansible's aliases).

    Secrets never appear here: passwords are named by an environment variable.
    """

    name: str  # inventory name, used in every message
    address: str  # what to connect to (``host`` / ``ansible_host``; defaults to ``name``)
    port: int = 22
    user: str = "root"
    key_file: str | None = None
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    password_env: str | None = None  # name of the env var holding the SSH password
    become: bool = False
    become_user: str = "root"
    become_password_env: str | None = None
    connection: str = "ssh"  # "ssh" or "local"
    connect_timeout: float = 10.0


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
