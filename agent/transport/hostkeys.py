"""Host key checking for the SSH transport: strict by default, accept-new on request.

A key that is not in known_hosts is refused (or, with ``accept_new``, appended to the file); a
key that differs from the recorded one is always refused, naming both fingerprints.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
from pathlib import Path

import paramiko

from agent.errors import HostKeyError

log = logging.getLogger(__name__)


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def known_hosts_name(hostname: str, port: int) -> str:
    """The name a host is recorded under in known_hosts (``[host]:port`` off port 22)."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


def default_known_hosts() -> str:
    return str(Path.home() / ".ssh" / "known_hosts")


_parsed: dict[str, tuple[tuple[int, int, int, int], paramiko.HostKeys]] = {}
_parsed_lock = threading.Lock()


def add_recorded_keys(into: paramiko.HostKeys, path: str, name: str) -> None:
    """Add to ``into`` the known_hosts entries for ``name`` (as :func:`known_hosts_name` spells
    it), from ``path`` parsed once per version of the file.

    paramiko's own ``HostKeys.load`` compares every line with every earlier one, so loading a
    fleet's known_hosts for each of N connections costs O(N^3); this parses it once (again
    only when the file changes: size, mtime, inode) and gives each connection its own entries.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    version = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
    with _parsed_lock:
        cached = _parsed.get(path)
        if cached is None or cached[0] != version:
            parsed = paramiko.HostKeys()
            parsed.load(path)
            cached = _parsed[path] = (version, parsed)
    for key_type, key in (cached[1].lookup(name) or {}).items():
        into.add(name, key_type, key)


class StrictPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse any host whose key is not in known_hosts."""

    def __init__(self, inventory_name: str, known_hosts: str) -> None:
        self.inventory_name = inventory_name
        self.known_hosts = known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise HostKeyError(
            f"unknown host key for {hostname} ({key.get_name()} {fingerprint(key)}), "
            f"not in {self.known_hosts}",
            host=self.inventory_name,
            hint="verify it and add it to known_hosts, or run with --accept-new-host-keys",
        )


class AcceptNewPolicy(paramiko.MissingHostKeyPolicy):
    """Record an unknown host key in known_hosts (like OpenSSH ``accept-new``)."""

    def __init__(self, inventory_name: str, known_hosts: str) -> None:
        self.inventory_name = inventory_name
        self.known_hosts = known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        append_known_host(self.known_hosts, hostname, key)
        log.info(
            "%s: recorded new host key %s %s in %s",
            self.inventory_name,
            key.get_name(),
            fingerprint(key),
            self.known_hosts,
        )


def append_known_host(path: str, hostname: str, key: paramiko.PKey) -> None:
    """Append one ``name type base64`` line; create the file 0600 (and its directory 0700)."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        # A file edited by hand may lack a final newline: never glue two entries together.
        if os.fstat(fd).st_size > 0:
            with open(path, "rb") as existing:
                existing.seek(-1, os.SEEK_END)
                if existing.read(1) != b"\n":
                    line = "\n" + line
        os.write(fd, line.encode("ascii"))
    finally:
        os.close(fd)


def changed_key_error(
    inventory_name: str,
    hostname: str,
    got: paramiko.PKey,
    expected: paramiko.PKey,
    known_hosts: str,
) -> HostKeyError:
    """The error for a host whose key differs from the recorded one (never accepted)."""
    return HostKeyError(
        f"HOST KEY CHANGED for {hostname}: known_hosts ({known_hosts}) has "
        f"{expected.get_name()} {fingerprint(expected)}, host presented "
        f"{got.get_name()} {fingerprint(got)}",
        host=inventory_name,
        hint="someone may be intercepting the connection; if the host was rebuilt, "
        "remove the old entry from known_hosts",
    )
