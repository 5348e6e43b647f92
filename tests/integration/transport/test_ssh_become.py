"""``become`` over SSH: a non-root login user switching to root with sudo -S."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from agent.errors import CommandError
from agent.inventory.model import ConnectionSpec
from agent.transport.common import TEMP_PREFIX
from agent.transport.ssh import SSHConnection
from tests.integration.transport.conftest import TEST_PASSWORD, TEST_USER, Sshd
from tests.keywatch import KeyFileWatcher

pytestmark = pytest.mark.integration

PW_ENV = "OA_TEST_BECOME_PW"


@pytest.fixture(autouse=True)
def _needs_sudo_and_user(sshd: Sshd) -> None:
    assert sshd.has_user, "the sshd fixture could not create the oatest user"
    assert shutil.which("sudo"), "sudo is installed by scripts/setup-system (make test)"


@pytest.fixture()
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PW_ENV, TEST_PASSWORD)
    return TEST_PASSWORD


def user_spec(sshd: Sshd, **kw: object) -> ConnectionSpec:
    base: dict[str, object] = dict(
        name="web-9",
        address=sshd.address,
        port=sshd.port,
        user=TEST_USER,
        key_file=str(sshd.keys["ed25519"]),
        known_hosts=str(sshd.known_hosts),
        become_password_env=PW_ENV,
    )
    base.update(kw)
    return ConnectionSpec(**base)  # type: ignore[arg-type]


def open_conn(spec: ConnectionSpec) -> SSHConnection:
    return SSHConnection.open(spec, config=paramiko.SSHConfig())


@pytest.fixture()
def user_conn(sshd: Sshd, password: str) -> Iterator[SSHConnection]:
    with open_conn(user_spec(sshd)) as c:
        yield c


def test_become_runs_as_root_via_sudo(user_conn: SSHConnection) -> None:
    assert user_conn.run(["id", "-un"]).stdout == f"{TEST_USER}\n"
    r = user_conn.run(["sh", "-c", 'id -un; echo "$SUDO_USER"; echo err >&2'], become=True)
    assert (r.stdout, r.stderr, r.exit_code) == (f"root\n{TEST_USER}\n", "err\n", 0)


def test_become_password_never_reaches_the_command(user_conn: SSHConnection) -> None:
    assert user_conn.run(["cat"], become=True).stdout == ""
    assert user_conn.run(["cat"], stdin=b"payload\n", become=True).stdout == "payload\n"
    r = user_conn.run(["sh", "-c", "cat; exit 3"], stdin=b"x", become=True)
    assert (r.stdout, r.exit_code) == ("x", 3)
    assert TEST_PASSWORD not in r.stderr


def test_password_is_not_fed_to_a_command_sudo_runs_without_asking(
    sshd: Sshd, password: str
) -> None:
    # oatest may become nobody with NOPASSWD: sudo never reads stdin, so a password written
    # up front would land in cat's input. It must not.
    with open_conn(user_spec(sshd, become_user="nobody")) as c:
        r = c.run(["sh", "-c", "id -un; cat"], become=True)
        assert (r.stdout, r.exit_code) == ("nobody\n", 0)
        assert c.run(["cat"], stdin=b"data", become=True).stdout == "data"


def test_become_password_is_not_on_any_command_line(user_conn: SSHConnection) -> None:
    r = user_conn.run(
        ["sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '"], become=True
    )
    assert "sudo" in r.stdout and TEST_PASSWORD not in r.stdout


def test_become_without_password_fails_clearly(sshd: Sshd, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_conn(user_spec(sshd, become_password_env=None)) as c:
        with pytest.raises(CommandError) as info:
            c.run(["id"], become=True)
    assert str(info.value).startswith("web-9: become root failed for id")
    assert "become_password_env" in str(info.value)


def test_become_with_wrong_password_fails_without_echoing_it(
    sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PW_ENV, "not-the-password-42")
    with open_conn(user_spec(sshd)) as c:
        with pytest.raises(CommandError, match="become root failed") as info:
            c.run(["id"], become=True)
        assert "not-the-password-42" not in str(info.value) + info.value.stderr_tail
        assert c.run(["true"]).ok  # the connection survives


def test_become_is_a_no_op_when_already_the_user(sshd: Sshd) -> None:
    spec = user_spec(sshd, user="root", become_password_env=None)
    with open_conn(spec) as c:
        r = c.run(["sh", "-c", 'echo "${SUDO_USER:-none}"'], become=True)
    assert r.stdout == "none\n"


def test_file_operations_with_become_write_root_files(
    sshd: Sshd, password: str, tmp_path: Path
) -> None:
    os.chmod(tmp_path, 0o700)  # only root can enter
    target = tmp_path / "site.key"
    with open_conn(user_spec(sshd, become=True)) as c:
        assert c.read(str(target)) is None
        assert not c.stat(str(target)).exists
        c.write(str(target), b"\x00secret\n", mode=0o600)
        assert c.read(str(target)) == b"\x00secret\n"
        fs = c.stat(str(target))
        assert (fs.kind, fs.mode, fs.uid, fs.size) == ("file", 0o600, 0, 8)
        c.write(str(target), b"v2", mode=0o640, owner=None)
        assert target.read_bytes() == b"v2" and stat.S_IMODE(target.stat().st_mode) == 0o640
        os.symlink("site.key", tmp_path / "live")
        assert c.stat(str(tmp_path / "live")).link_target == "site.key"
        (tmp_path / f"{TEMP_PREFIX}old").write_bytes(b"")
        assert c.cleanup_temporaries(str(tmp_path)) == [f"{tmp_path}/{TEMP_PREFIX}old"]
        with pytest.raises(CommandError, match="cannot write"):
            c.write(str(tmp_path / "missing-dir" / "x"), b"x")
    assert sorted(os.listdir(tmp_path)) == ["live", "site.key"]


def test_become_write_never_shows_a_key_wider_than_0600(
    sshd: Sshd, password: str, tmp_path: Path
) -> None:
    with KeyFileWatcher([str(tmp_path)]) as watcher:
        with open_conn(user_spec(sshd, become=True)) as c:
            for _ in range(3):
                c.write(str(tmp_path / "k.key"), os.urandom(4 * 1024 * 1024), mode=0o600)
    assert not watcher.overflow
    assert str(tmp_path / "k.key") in watcher.keys_seen
    assert len(watcher.seen) > 10 and watcher.modes == {0o600}, watcher.seen
