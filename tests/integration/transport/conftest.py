"""A real OpenSSH server on 127.0.0.1:<free port> for the SSH transport tests.

The fixture writes its own host keys, client keys (ed25519, ecdsa, rsa), authorized_keys and
sshd_config in a temporary directory, starts ``/usr/sbin/sshd -D -e`` and stops it by PID.
A non-root user ``oatest`` (password ``TEST_PASSWORD``, sudo with password) is created once.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
TEST_USER = "oatest"
TEST_PASSWORD = "origin-agent-test-pw"  # loopback-only test account on a throwaway VM
SUDOERS = "/etc/sudoers.d/origin-agent-test"


@dataclass(frozen=True)
class Sshd:
    address: str
    port: int
    directory: Path
    known_hosts: Path  # records this server's host key
    keys: dict[str, Path]  # client private keys by type: ed25519, ecdsa, rsa
    host_key: Path
    pid: int
    has_user: bool  # the non-root user oatest with password sudo exists


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, kind: str) -> Path:
    extra = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def wait_for_banner(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(100):
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("sshd did not come up")


def ensure_test_user() -> bool:
    """Create ``oatest`` with a password and password-sudo (idempotent); False if impossible."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        return False
    if subprocess.run(["id", TEST_USER], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "-m", "-s", "/bin/sh", TEST_USER], check=True, capture_output=True
        )
    subprocess.run(
        ["chpasswd"],
        input=f"{TEST_USER}:{TEST_PASSWORD}\n".encode(),
        check=True,
        capture_output=True,
    )
    rules = (
        f"{TEST_USER} ALL=(ALL:ALL) ALL\n"  # root (and others) with the password
        f"{TEST_USER} ALL=(nobody) NOPASSWD: ALL\n"
    )  # nobody without one
    if Path("/etc/sudoers.d").is_dir() and (
        not Path(SUDOERS).exists() or Path(SUDOERS).read_text() != rules
    ):
        tmp = f"{SUDOERS}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o440)
        os.write(fd, rules.encode())
        os.close(fd)
        os.replace(tmp, SUDOERS)
    return True


def install_user_key(pub: str) -> None:
    home = Path(f"~{TEST_USER}").expanduser()
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    auth = ssh_dir / "authorized_keys"
    existing = auth.read_text() if auth.exists() else ""
    if pub not in existing:
        with open(auth, "a") as fh:
            fh.write(pub)
    subprocess.run(["chown", "-R", f"{TEST_USER}:", str(ssh_dir)], check=True)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if os.geteuid() != 0 or not os.path.exists(SSHD):
        pytest.fail(
            "these tests start a real sshd: run them as root after scripts/setup-system (make test)"
        )
    has_user = ensure_test_user()
    d = tmp_path_factory.mktemp("sshd")
    host_key = keygen(d / "host_ed25519", "ed25519")
    keys = {kind: keygen(d / f"id_{kind}", kind) for kind in ("ed25519", "ecdsa", "rsa")}
    auth = d / "authorized_keys"
    auth.write_text("".join(Path(f"{k}.pub").read_text() for k in keys.values()))
    if has_user:  # sshd reads authorized_keys as the user: give oatest its own copy
        install_user_key(Path(f"{keys['ed25519']}.pub").read_text())
    port = free_port()
    config = d / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {auth} .ssh/authorized_keys\nStrictModes no\nPermitRootLogin yes\n"
        "PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "AllowTcpForwarding yes\nPrintMotd no\nLogLevel ERROR\nMaxStartups 100\n"
        "MaxSessions 100\nSubsystem sftp /usr/lib/openssh/sftp-server -u 000\n"
    )
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    log = d / "sshd.log"
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=log_fh, stderr=subprocess.STDOUT
        )
    try:
        wait_for_banner(port, proc, log)
        pub = Path(f"{host_key}.pub").read_text().split()
        known = d / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
        yield Sshd("127.0.0.1", port, d, known, keys, host_key, proc.pid, has_user)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
