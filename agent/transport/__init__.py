"""Transport layer: run commands and move files on a host. Knows nothing of certificates.

:func:`connect` turns a :class:`~agent.transport.spec.ConnectionSpec` into an open
:class:`~agent.transport.base.Connection`: ``connection: local``, or a host named ``localhost``
whose address is ``localhost`` (Ansible's implicit localhost), gives a
:class:`~agent.transport.local.LocalConnection`; anything else an SSH connection (paramiko),
opened once and reused for the whole run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.errors import ConnectError
from agent.transport.base import Connection, Counters, FileStat, Owner, Result

if TYPE_CHECKING:
    from agent.transport.spec import ConnectionSpec

__all__ = ["Connection", "Counters", "FileStat", "Owner", "Result", "connect"]


def connect(spec: ConnectionSpec, *, accept_new_host_keys: bool = False) -> Connection:
    """Open a connection to the host described by ``spec``.

    Args:
        spec: how to reach the host.
        accept_new_host_keys: record unknown host keys in the known_hosts file instead of
            refusing them (a *changed* key is always refused).

    Raises:
        ConnectError: the host cannot be reached or authenticated.
        HostKeyError: its host key is unknown (and not accepted) or has changed.
    """
    if spec.connection == "local" or (spec.name == spec.address == "localhost"):
        from agent.transport.local import LocalConnection

        return LocalConnection(spec.name, become_user=spec.become_user)
    if spec.connection != "ssh":
        raise ConnectError(
            f"unknown connection type {spec.connection!r}",
            host=spec.name,
            hint="use 'ssh' or 'local'",
        )
    from agent.transport.ssh import SSHConnection

    return SSHConnection.open(spec, accept_new_host_keys=accept_new_host_keys)
