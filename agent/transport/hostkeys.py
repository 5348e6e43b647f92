"""Host key checking for the SSH transport: strict by default, accept-new on request.

A key that is not in known_hosts is refused (or, with ``accept_new``, appended to the file); a
key that differs from the recorded one is always refused, naming both fingerprints.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import paramiko
from paramiko.pkey import UnknownKeyType

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


@dataclass(frozen=True)
class _Recorded:
    """One known_hosts file, read in one pass: the entries of each plain name, and the
    hashed entries (``|1|salt|hash``), which only hashing the asked-for name can match. Keys
    stay text (type, base64) until a connection asks for its own."""

    by_name: dict[str, list[tuple[str, str]]]
    hashed: list[tuple[str, str, str]]  # (hashed name, key type, base64)

    def entries(self, name: str) -> list[tuple[str, str]]:
        found = list(self.by_name.get(name, ()))
        for hashed, key_type, data in self.hashed:
            try:
                mine = paramiko.HostKeys.hash_host(name, hashed)
            except (AssertionError, binascii.Error, IndexError, ValueError):
                continue  # a malformed salt matches nothing
            if hmac.compare_digest(mine, hashed):
                found.append((key_type, data))
        return found


def _read_known_hosts(path: str) -> _Recorded:
    by_name: dict[str, list[tuple[str, str]]] = {}
    hashed: list[tuple[str, str, str]] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            fields = line.split()
            if len(fields) < 3 or fields[0].startswith(("#", "@")):
                continue  # comments, markers (@cert-authority, @revoked: paramiko skips them)
            names, key_type, data = fields[:3]
            for host in names.split(","):
                if host.startswith("|1|"):
                    hashed.append((host, key_type, data))
                elif host:
                    by_name.setdefault(host, []).append((key_type, data))
    return _Recorded(by_name, hashed)


_parsed: dict[str, tuple[tuple[int, int, int, int], _Recorded]] = {}
_parsed_lock = threading.Lock()


def add_recorded_keys(into: paramiko.HostKeys, path: str, name: str) -> None:
    """Add to ``into`` the known_hosts entries for ``name`` (as :func:`known_hosts_name` spells
    it), from ``path`` read once per version of the file (size, mtime, inode).

    paramiko's own ``HostKeys.load`` compares every line with every earlier one and its
    ``lookup`` walks every entry, so loading a fleet's known_hosts for each of N connections
    costs O(N^3); this reads the file once, indexed by name, and builds only the asked-for
    host's keys. As with paramiko, the first key of each type recorded for a name counts, and
    lines it cannot use (an unknown key type, bad base64) are skipped.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    version = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
    with _parsed_lock:
        cached = _parsed.get(path)
        if cached is None or cached[0] != version:
            cached = _parsed[path] = (version, _read_known_hosts(path))
    seen: set[str] = set()
    for key_type, data in cached[1].entries(name):
        try:
            key = paramiko.PKey.from_type_string(key_type, base64.b64decode(data, validate=True))
        except (paramiko.SSHException, UnknownKeyType, binascii.Error, ValueError):
            continue
        if key.get_name() not in seen:
            seen.add(key.get_name())
            into.add(name, key.get_name(), key)


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
