"""The SSH transport against the lab's hosts: strict host keys, commands, files, round trips."""

from __future__ import annotations

import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agent.errors import HostKeyError
from agent.inventory.model import ConnectionSpec
from agent.lab import Lab
from agent.transport import connect
from agent.transport.base import Connection, Owner
from agent.transport.ssh import SSHConnection

pytestmark = pytest.mark.integration


def lab_spec(lab: Lab, index: int, **kw: object) -> ConnectionSpec:
    host = lab.hosts[index]
    base: dict[str, object] = dict(
        name=host.name,
        address=host.address,
        key_file=lab.key_file,
        known_hosts=lab.known_hosts,
        connect_timeout=10.0,
    )
    base.update(kw)
    return ConnectionSpec(**base)  # type: ignore[arg-type]


def test_every_lab_host_runs_reads_and_writes_with_strict_host_keys(lab: Lab) -> None:
    def one(index: int) -> None:
        host = lab.hosts[index]
        conn = connect(lab_spec(lab, index))
        try:
            assert isinstance(conn, SSHConnection)
            assert conn.run(["hostname"], check=True).stdout.strip() == host.name
            assert conn.run(["cat", "/etc/hostname"], check=True).stdout.strip() == host.name
            path = "/etc/ssl/private/origin-agent-transport-test.key"
            conn.run(["mkdir", "-p", "/etc/ssl/private"], check=True)
            data = f"secret of {host.name}\n".encode() + os.urandom(50_000)
            conn.write(path, data, mode=0o600, owner=Owner("root", "root"))
            local = Path(host.path(path))
            assert local.read_bytes() == data  # the file landed on this host only
            assert stat.S_IMODE(local.stat().st_mode) == 0o600
            assert conn.read(path) == data
            st = conn.stat(path)
            assert (st.exists, st.kind, st.mode, st.uid, st.size) == (
                True,
                "file",
                0o600,
                0,
                len(data),
            )
            assert conn.run(["rm", "-f", path], check=True).ok
            assert conn.read(path) is None
        finally:
            conn.close()

    with ThreadPoolExecutor(len(lab.hosts)) as pool:
        list(pool.map(one, range(len(lab.hosts))))


def test_each_lab_host_sees_only_its_own_writes(lab: Lab) -> None:
    a, b = (connect(lab_spec(lab, i)) for i in (0, 1))
    try:
        a.write("/tmp/origin-agent-which", b"a", mode=0o644)
        b.write("/tmp/origin-agent-which", b"b", mode=0o644)
        path = "/tmp/origin-agent-which"
        assert (a.read(path), b.read(path)) == (b"a", b"b")
    finally:
        a.close()
        b.close()


def test_a_lab_host_missing_from_known_hosts_is_refused(lab: Lab, tmp_path: Path) -> None:
    host = lab.hosts[0]
    known = tmp_path / "known_hosts"
    known.write_text(
        "".join(
            line
            for line in Path(lab.known_hosts).read_text().splitlines(True)
            if not line.startswith(host.address + ",")
        )
    )
    with pytest.raises(HostKeyError, match=f"^{host.name}: unknown host key for {host.address}"):
        connect(lab_spec(lab, 0, known_hosts=str(known)))
    conn = connect(lab_spec(lab, 0, known_hosts=str(known)), accept_new_host_keys=True)
    conn.close()
    assert known.read_text().count(host.address) == 1


def test_round_trips_and_latency_on_a_lab_host(lab: Lab) -> None:
    conn: Connection = connect(lab_spec(lab, 2))
    try:
        conn.run(["true"])
        conn.stat("/etc/hostname")
        conn.write("/tmp/origin-agent-rt", b"x" * 4096, mode=0o600)
        conn.read("/tmp/origin-agent-rt")
        assert conn.counters.round_trips == 1 + 1 + 3 + 2
        started = time.monotonic()
        for _ in range(20):
            conn.run(["true"])
        per_command = (time.monotonic() - started) / 20
        assert per_command < 0.25, per_command
    finally:
        conn.close()
