"""SSHConnection against a real sshd on loopback: host keys, auth, run, files, counters."""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.errors import CommandError, ConnectError, HostKeyError
from agent.inventory.model import ConnectionSpec
from agent.transport import connect
from agent.transport.base import Connection, Owner
from agent.transport.common import TEMP_PREFIX
from agent.transport.hostkeys import fingerprint
from agent.transport.local import LocalConnection
from agent.transport.sftp_pipe import Pipe
from agent.transport.ssh import SSHConnection
from tests.integration.transport.conftest import Sshd
from tests.keywatch import KeyFileWatcher

pytestmark = pytest.mark.integration

EMPTY_CONFIG = paramiko.SSHConfig()


def spec_for(sshd: Sshd, **kw: object) -> ConnectionSpec:
    base: dict[str, object] = dict(
        name="web-1",
        address=sshd.address,
        port=sshd.port,
        user="root",
        key_file=str(sshd.keys["ed25519"]),
        known_hosts=str(sshd.known_hosts),
        connect_timeout=5.0,
    )
    base.update(kw)
    return ConnectionSpec(**base)  # type: ignore[arg-type]


def open_conn(spec: ConnectionSpec, **kw: bool) -> SSHConnection:
    return SSHConnection.open(spec, config=EMPTY_CONFIG, **kw)


@pytest.fixture(scope="module")
def conn(sshd: Sshd) -> Iterator[SSHConnection]:
    c = open_conn(spec_for(sshd))
    try:
        yield c
    finally:
        c.close()


# -- host keys --------------------------------------------------------------------------------


def test_unknown_host_key_is_refused_by_default(sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError) as info:
        open_conn(spec_for(sshd, known_hosts=str(empty)))
    text = str(info.value)
    host_pub = paramiko.PKey.from_path(str(sshd.host_key))
    assert text.startswith("web-1: unknown host key for [127.0.0.1]:")
    assert fingerprint(host_pub) in text and "--accept-new-host-keys" in text
    assert empty.read_text() == ""


def test_accept_new_records_the_key_and_later_runs_are_strict(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "sub" / "known_hosts"
    with open_conn(spec_for(sshd, known_hosts=str(known)), accept_new_host_keys=True) as c:
        assert c.run(["true"]).ok
    line = known.read_text()
    assert line.startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    with open_conn(spec_for(sshd, known_hosts=str(known))) as c:  # strict now passes
        assert c.run(["true"]).ok
    assert known.read_text() == line  # nothing appended twice


def test_changed_host_key_is_refused_even_with_accept_new(sshd: Sshd, tmp_path: Path) -> None:
    other = paramiko.Ed25519Key.from_private_key_file(str(sshd.keys["ed25519"]))
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 {other.get_base64()}\n")
    for accept in (False, True):
        with pytest.raises(HostKeyError) as info:
            open_conn(spec_for(sshd, known_hosts=str(known)), accept_new_host_keys=accept)
        text = str(info.value)
        real = paramiko.PKey.from_path(str(sshd.host_key))
        assert "HOST KEY CHANGED for 127.0.0.1" in text
        assert f"has ssh-ed25519 {fingerprint(other)}" in text
        assert f"presented ssh-ed25519 {fingerprint(real)}" in text
    assert known.read_text().count("\n") == 1


def test_fingerprint_matches_ssh_keygen(sshd: Sshd) -> None:
    import subprocess

    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{sshd.host_key}.pub"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[1]
    assert fingerprint(paramiko.PKey.from_path(str(sshd.host_key))) == out


# -- authentication and reaching the host -----------------------------------------------------


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_key_auth_with_each_key_type(sshd: Sshd, kind: str) -> None:
    with open_conn(spec_for(sshd, key_file=str(sshd.keys[kind]))) as c:
        assert c.run(["id", "-un"]).stdout == "root\n"


def test_wrong_key_fails_authentication_naming_the_host(sshd: Sshd, tmp_path: Path) -> None:
    from tests.integration.transport.conftest import keygen

    stranger = keygen(tmp_path / "stranger", "ed25519")
    with pytest.raises(ConnectError, match=r"^web-1: authentication failed for root@127.0.0.1"):
        open_conn(spec_for(sshd, key_file=str(stranger)))


def test_password_from_environment(sshd: Sshd, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.transport.conftest import TEST_PASSWORD, TEST_USER

    monkeypatch.setenv("OA_TEST_SSH_PW", TEST_PASSWORD)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    spec = spec_for(sshd, user=TEST_USER, key_file=None, password_env="OA_TEST_SSH_PW")
    with open_conn(spec) as c:
        assert c.run(["id", "-un"]).stdout == f"{TEST_USER}\n"
    monkeypatch.setenv("OA_TEST_SSH_PW", "wrong-secret-xyz")
    with pytest.raises(ConnectError) as info:
        open_conn(spec)
    assert "wrong-secret-xyz" not in str(info.value) and "authentication failed" in str(info.value)


def test_unset_password_variable_is_reported_without_its_name(
    sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OA_TEST_UNSET", raising=False)
    with pytest.raises(ConnectError, match="variable named by password_env is not set") as info:
        open_conn(spec_for(sshd, password_env="OA_TEST_UNSET"))
    assert "OA_TEST_UNSET" not in str(info.value)


def test_ssh_config_supplies_hostname_port_user_and_key(sshd: Sshd, tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text(
        f"Host origin-alias\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User root\n"
        f"  IdentityFile {sshd.keys['ecdsa']}\n"
    )
    spec = ConnectionSpec(name="web-2", address="origin-alias", known_hosts=str(sshd.known_hosts))
    with SSHConnection.open(spec, config=paramiko.SSHConfig.from_path(str(cfg))) as c:
        assert c.run(["hostname"]).ok


@pytest.mark.parametrize("hops", [1, 2])
def test_proxy_jump_from_ssh_config(sshd: Sshd, tmp_path: Path, hops: int) -> None:
    cfg = tmp_path / "config"
    jump = ",".join([f"root@127.0.0.1:{sshd.port}"] * hops)
    cfg.write_text(f"Host behind\n  HostName 127.0.0.1\n  Port {sshd.port}\n  ProxyJump {jump}\n")
    spec = spec_for(sshd, address="behind", port=22)
    with SSHConnection.open(spec, config=paramiko.SSHConfig.from_path(str(cfg))) as c:
        assert len(c.jumps) == hops
        assert c.run(["printf", "%s", "through"]).stdout == "through"
        assert c.read(str(sshd.known_hosts)) == sshd.known_hosts.read_bytes()


def test_user_known_hosts_file_from_ssh_config(sshd: Sshd, tmp_path: Path) -> None:
    cfg = paramiko.SSHConfig.from_text(f"Host *\n  UserKnownHostsFile {sshd.known_hosts}\n")
    with SSHConnection.open(spec_for(sshd, known_hosts=None), config=cfg) as c:
        assert c.run(["true"]).ok
    strict = paramiko.SSHConfig.from_text(f"Host *\n  UserKnownHostsFile {tmp_path}/none\n")
    with pytest.raises(HostKeyError):
        SSHConnection.open(spec_for(sshd, known_hosts=None), config=strict)


def test_a_dropped_connection_is_a_connect_error(sshd: Sshd) -> None:
    import signal

    c = open_conn(spec_for(sshd))
    try:
        # The shell's parent is this connection's sshd session process (a child of our sshd).
        session = int(c.run(["sh", "-c", "echo $PPID"]).stdout)
        assert session != sshd.pid
        os.kill(session, signal.SIGKILL)
        with pytest.raises(ConnectError, match="^web-1: connection"):
            for _ in range(50):
                c.run(["true"])
                time.sleep(0.05)
    finally:
        c.close()


def test_frozen_host_costs_about_the_connect_timeout(sshd: Sshd) -> None:
    with socket.socket() as silent:  # accepts TCP (backlog) but never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        with pytest.raises(ConnectError, match="no SSH banner") as info:
            open_conn(spec_for(sshd, port=silent.getsockname()[1], connect_timeout=1.0))
        elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.5, elapsed
    assert str(info.value).startswith("web-1: ")


def test_refused_port_is_retried_then_reported(sshd: Sshd) -> None:
    from tests.integration.transport.conftest import free_port

    started = time.monotonic()
    with pytest.raises(ConnectError, match=r"refused \(3 attempts\)"):
        open_conn(spec_for(sshd, port=free_port()))
    assert 0.8 < time.monotonic() - started < 3


def test_connect_factory_picks_local_or_ssh(sshd: Sshd) -> None:
    local = connect(ConnectionSpec(name="here", address="here", connection="local"))
    assert isinstance(local, LocalConnection)
    remote = connect(spec_for(sshd))
    try:
        assert isinstance(remote, SSHConnection) and isinstance(remote, Connection)
    finally:
        remote.close()


# -- commands ---------------------------------------------------------------------------------


def test_run_returns_exit_code_stdout_stderr(conn: SSHConnection) -> None:
    r = conn.run(["sh", "-c", "printf out; printf err >&2; exit 4"])
    assert (r.exit_code, r.stdout, r.stderr) == (4, "out", "err")


def test_run_check_raises_command_error_with_evidence(conn: SSHConnection) -> None:
    with pytest.raises(CommandError) as info:
        conn.run(["sh", "-c", "echo nope >&2; exit 9"], check=True)
    assert info.value.exit_status == 9 and info.value.argv[0] == "sh"
    assert str(info.value).startswith("web-1: sh -c ") and str(info.value).endswith(": nope")


def test_run_stdin_larger_than_the_window(conn: SSHConnection) -> None:
    blob = os.urandom(3 * 1024 * 1024)
    r = conn.run(["sha256sum"], stdin=blob)
    import hashlib

    assert r.stdout.split()[0] == hashlib.sha256(blob).hexdigest()


def test_run_timeout(conn: SSHConnection) -> None:
    started = time.monotonic()
    with pytest.raises(CommandError, match="timed out after 0.5s"):
        conn.run(["sleep", "10"], timeout=0.5)
    assert time.monotonic() - started < 2
    assert conn.run(["true"]).ok  # the connection is still usable


ARG = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    args=st.lists(
        ARG
        | st.sampled_from(
            [
                "'",
                '"',
                "$(id)",
                "`id`",
                ";",
                "\n",
                "*",
                "-n",
                "a b",
                "\\",
                "${HOME}",
                "!",
                "&&",
                "|",
                "~",
            ]
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_argv_comes_back_byte_exact(conn: SSHConnection, args: list[str]) -> None:
    r = conn.run(["printf", r"%s\0", *args], check=True)
    assert r.stdout.split("\0")[:-1] == args


# -- files ------------------------------------------------------------------------------------


def test_write_read_stat_roundtrip(conn: SSHConnection, tmp_path: Path) -> None:
    target = tmp_path / "site.key"
    data = os.urandom(100_000)
    conn.write(str(target), data, mode=0o600)
    assert target.read_bytes() == data
    assert conn.read(str(target)) == data
    fs = conn.stat(str(target))
    assert (fs.exists, fs.kind, fs.mode, fs.size, fs.uid) == (True, "file", 0o600, 100_000, 0)
    conn.write(str(target), b"short", mode=0o644)
    assert conn.read(str(target)) == b"short"
    assert conn.stat(str(target)).mode == 0o644
    assert os.listdir(tmp_path) == ["site.key"]


def test_read_and_stat_of_missing_paths(conn: SSHConnection, tmp_path: Path) -> None:
    assert conn.read(str(tmp_path / "nope")) is None
    assert not conn.stat(str(tmp_path / "nope")).exists
    assert not conn.stat(str(tmp_path / "nope" / "deeper")).exists
    (tmp_path / "empty").write_bytes(b"")
    assert conn.read(str(tmp_path / "empty")) == b""


@pytest.mark.parametrize("size", [32767, 32768, 32769, 8 * 32768, 8 * 32768 + 1])
def test_read_sizes_around_chunk_edges(conn: SSHConnection, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    assert conn.read(str(tmp_path / "f")) == data


def test_stat_symlink_and_directory(conn: SSHConnection, tmp_path: Path) -> None:
    os.symlink("versions/2", tmp_path / "live")
    fs = conn.stat(str(tmp_path / "live"))
    assert (fs.kind, fs.link_target) == ("link", "versions/2")
    assert conn.stat(str(tmp_path)).kind == "dir"


def test_write_with_owner(conn: SSHConnection, tmp_path: Path) -> None:
    import grp
    import pwd

    conn.write(str(tmp_path / "o"), b"x", mode=0o640, owner=Owner("nobody", "nogroup"))
    fs = conn.stat(str(tmp_path / "o"))
    assert (fs.uid, fs.gid, fs.mode) == (
        pwd.getpwnam("nobody").pw_uid,
        grp.getgrnam("nogroup").gr_gid,
        0o640,
    )
    with pytest.raises(CommandError, match="unknown user 'no-such-user-q'"):
        conn.write(str(tmp_path / "p"), b"x", owner=Owner("no-such-user-q"))


def test_temporary_file_has_its_final_mode_at_creation(conn: SSHConnection, tmp_path: Path) -> None:
    # The test sshd runs sftp-server with umask 000: a file opened without a mode would be 0666.
    pipe = Pipe(conn._sftp_client())
    path = str(tmp_path / f"{TEMP_PREFIX}probe")
    from paramiko import sftp as proto

    create = proto.SFTP_FLAG_WRITE | proto.SFTP_FLAG_CREATE | proto.SFTP_FLAG_EXCL
    handle = pipe.open(path, create, 0o600)
    try:
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600  # before any FSETSTAT or byte
    finally:
        pipe.batch([(proto.CMD_CLOSE, (handle,))])
    with pytest.raises(OSError):  # O_EXCL: never reuses an existing name
        pipe.open(path, create, 0o600)


def test_write_never_shows_a_key_wider_than_0600(conn: SSHConnection, tmp_path: Path) -> None:
    with KeyFileWatcher([str(tmp_path)]) as watcher:
        for _ in range(5):
            conn.write(str(tmp_path / "site.key"), os.urandom(2 * 1024 * 1024), mode=0o600)
    assert not watcher.overflow
    assert str(tmp_path / "site.key") in watcher.keys_seen
    assert len(watcher.seen) > 10 and watcher.modes == {0o600}, watcher.seen


def test_failed_write_leaves_no_temporary(conn: SSHConnection, tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(CommandError, match="cannot write"):
        conn.write(str(tmp_path / "adir"), b"x")  # rename over a directory fails
    assert sorted(os.listdir(tmp_path)) == ["adir"]
    with pytest.raises(CommandError, match="cannot write /nonexistent-dir/x"):
        conn.write("/nonexistent-dir/x", b"x")


def test_cleanup_temporaries_removes_leftovers_only(conn: SSHConnection, tmp_path: Path) -> None:
    (tmp_path / f"{TEMP_PREFIX}1234").write_bytes(b"")
    (tmp_path / "keep").write_bytes(b"")
    assert conn.cleanup_temporaries(str(tmp_path)) == [f"{tmp_path}/{TEMP_PREFIX}1234"]
    assert os.listdir(tmp_path) == ["keep"]


def test_counters_count_round_trips_after_connect(sshd: Sshd, tmp_path: Path) -> None:
    with open_conn(spec_for(sshd)) as c:
        assert c.counters.round_trips == 0
        c.run(["true"])
        assert (c.counters.commands, c.counters.file_ops) == (1, 0)
        c.stat(str(tmp_path))
        assert c.counters.file_ops == 1
        c.write(str(tmp_path / "a"), b"a" * 1000)  # open, pipelined body, rename
        assert c.counters.file_ops == 4
        c.read(str(tmp_path / "a"))  # open, pipelined reads
        assert c.counters.file_ops == 6
        assert c.counters.round_trips == 7
        assert c.counters.extra["sftp_sessions"] == 1  # one SFTP channel, reused


def test_every_openssh_ecdsa_and_rsa_key_loads(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from agent.transport.ssh_connect import load_keys

    made: list[tuple[Path, str]] = []
    for i in range(12):
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
            ec.generate_private_key(ec.SECP256R1())
            if i
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
        path = tmp_path / f"k{i}"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
        )
        pub = (
            key.public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .split()[1]
        )
        made.append((path, pub.decode()))
    loaded = load_keys("web-1", tuple(str(p) for p, _ in made))
    assert [k.get_base64() for k in loaded] == [pub for _, pub in made]
