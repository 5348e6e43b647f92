"""LocalConnection: the Connection contract on this machine, against a scratch root."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.errors import CommandError, ValidationError
from agent.transport.base import Connection, Owner
from agent.transport.common import TEMP_PREFIX
from agent.transport.local import LocalConnection
from tests.keywatch import KeyFileWatcher


@pytest.fixture()
def conn(tmp_path: Path) -> LocalConnection:
    (tmp_path / "etc").mkdir()
    return LocalConnection("web-1", root=tmp_path)


def test_local_connection_satisfies_the_protocol(conn: LocalConnection) -> None:
    assert isinstance(conn, Connection)


def test_run_returns_output_and_exit_code(conn: LocalConnection) -> None:
    result = conn.run(["sh", "-c", "printf out; printf err >&2; exit 3"])
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out", "err")
    assert result.argv == ("sh", "-c", "printf out; printf err >&2; exit 3")
    assert not result.ok


def test_run_passes_stdin_bytes(conn: LocalConnection) -> None:
    assert conn.run(["cat"], stdin=b"a\nb\x01").stdout == "a\nb\x01"


def test_run_with_check_raises_command_error_with_evidence(conn: LocalConnection) -> None:
    with pytest.raises(CommandError) as info:
        conn.run(["sh", "-c", "echo boom >&2; exit 7"], check=True)
    err = info.value
    assert err.exit_status == 7 and err.host == "web-1"
    assert "boom" in err.stderr_tail and str(err).startswith("web-1: ")
    assert "exited 7: boom" in str(err)


def test_run_timeout_raises_command_error(conn: LocalConnection) -> None:
    with pytest.raises(CommandError, match="timed out after 0.2s"):
        conn.run(["sleep", "5"], timeout=0.2)


def test_missing_program_is_a_command_error(conn: LocalConnection) -> None:
    with pytest.raises(CommandError, match="cannot run"):
        conn.run(["/nonexistent/program"])


def test_write_then_read_and_stat_under_root(conn: LocalConnection, tmp_path: Path) -> None:
    conn.write("/etc/site.key", b"secret", mode=0o600)
    assert (tmp_path / "etc/site.key").read_bytes() == b"secret"
    assert conn.read("/etc/site.key") == b"secret"
    st = conn.stat("/etc/site.key")
    assert (st.exists, st.kind, st.mode, st.size) == (True, "file", 0o600, 6)
    assert os.listdir(tmp_path / "etc") == ["site.key"]


def test_write_replaces_atomically_and_sets_mode_even_if_wider(
    conn: LocalConnection, tmp_path: Path
) -> None:
    old = os.umask(0o077)
    try:
        conn.write("/etc/a.conf", b"one", mode=0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "etc/a.conf").st_mode) == 0o644
    inode = os.stat(tmp_path / "etc/a.conf").st_ino
    conn.write("/etc/a.conf", b"two", mode=0o640)
    assert (tmp_path / "etc/a.conf").read_bytes() == b"two"
    assert os.stat(tmp_path / "etc/a.conf").st_ino != inode  # renamed over, not rewritten


def test_write_never_exposes_a_key_wider_than_0600(conn: LocalConnection, tmp_path: Path) -> None:
    with KeyFileWatcher([str(tmp_path / "etc")]) as watcher:
        for i in range(200):
            conn.write(f"/etc/k{i % 3}.key", b"k" * 65536, mode=0o600)
    assert not watcher.overflow
    assert watcher.keys_seen >= {str(tmp_path / f"etc/k{i}.key") for i in range(3)}
    assert watcher.modes == {0o600}, watcher.seen


def test_stat_missing_and_symlink(conn: LocalConnection, tmp_path: Path) -> None:
    assert not conn.stat("/etc/nope").exists
    assert not conn.stat("/etc/nope/deeper").exists
    assert conn.read("/etc/nope") is None
    os.symlink("v1", tmp_path / "etc/live")
    st = conn.stat("/etc/live")
    assert (st.kind, st.link_target) == ("link", "v1")
    assert conn.stat("/etc").kind == "dir"


def test_write_with_unknown_owner_fails_before_creating(
    conn: LocalConnection, tmp_path: Path
) -> None:
    with pytest.raises(CommandError, match="unknown owner"):
        conn.write("/etc/o", b"x", owner=Owner("no-such-user-xyz"))
    assert os.listdir(tmp_path / "etc") == []


def test_write_into_missing_directory_fails_cleanly(conn: LocalConnection) -> None:
    with pytest.raises(CommandError, match="cannot write /nope/x"):
        conn.write("/nope/x", b"x")


def test_cleanup_temporaries_removes_only_leftovers(conn: LocalConnection, tmp_path: Path) -> None:
    (tmp_path / "etc" / f"{TEMP_PREFIX}abc").write_bytes(b"")
    (tmp_path / "etc" / "keep").write_bytes(b"")
    assert conn.cleanup_temporaries("/etc") == [f"/etc/{TEMP_PREFIX}abc"]
    assert os.listdir(tmp_path / "etc") == ["keep"]


def test_relative_paths_are_rejected_under_root(conn: LocalConnection) -> None:
    with pytest.raises(ValidationError):
        conn.read("etc/x")


def test_counters_count_every_round_trip(conn: LocalConnection) -> None:
    conn.run(["true"])
    conn.write("/etc/x", b"")
    conn.read("/etc/x")
    conn.stat("/etc/x")
    assert (conn.counters.commands, conn.counters.file_ops, conn.counters.round_trips) == (1, 3, 4)
