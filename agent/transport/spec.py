"""How to reach one host: what the inventory resolves and the transports consume."""

from __future__ import annotations

from dataclasses import dataclass


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
