"""Where ``status``, ``pins`` and ``promote`` look from: the controller first, and the origin
itself (``openssl s_client`` over the SSH connection) when the controller cannot reach the
origin's HTTPS port, as with origins firewalled to the CDN's address ranges or reachable only
through a bastion. The edge sees what the server presents; so does the origin."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from agent.errors import AgentError
from agent.inventory import Host, connection_spec
from agent.modules.tls.decide import target_address
from agent.modules.tls.txn import parse_served
from agent.pki import sclient
from agent.pki.probe import Served
from agent.transport import Connection, connect

UNREACHED = ("refused", "timeout", "unreachable")
"""Probe outcomes that say the controller did not reach the port (not what it serves)."""


def controller_address(host: Host) -> str:
    """The address the controller probes for ``host`` (the one rule of the TLS step)."""
    try:
        connected: str | None = connection_spec(host).address
    except AgentError:
        connected = None
    return target_address(host.vars, host.name, connected=connected)


def origin_address(host: Host) -> str:
    """The address the origin probes itself on: the site's listen address, else loopback."""
    return str(host.vars.get("listen_address") or "127.0.0.1")


def served_from_origin(
    conn: Connection, address: str, port: int, names: Sequence[str], *, become: bool = False
) -> dict[str, Served]:
    """One command on the origin: a handshake per name. Names the origin could not report
    are missing from the result."""
    script = "\n".join(
        f"echo '@@served '{shlex.quote(name)}; {sclient.shell(address, port, name)}; echo @@end"
        for name in names
    )
    result = conn.run(["sh", "-c", script], become=become, timeout=30 + 5 * len(names))
    outputs = parse_served(result.stdout)
    return {
        n: sclient.parse(outputs[n], address=address, port=port, name=n)
        for n in names
        if n in outputs
    }


def served_via_ssh(host: Host, port: int, names: Sequence[str]) -> tuple[dict[str, Served], str]:
    """:func:`served_from_origin` over a fresh SSH connection to ``host``; ``({}, why)`` when
    that connection cannot be made."""
    try:
        spec = connection_spec(host)
        conn = connect(spec)
    except AgentError as err:
        return {}, str(err)
    try:
        return served_from_origin(conn, origin_address(host), port, names, become=spec.become), ""
    except AgentError as err:
        return {}, str(err)
    finally:
        conn.close()
