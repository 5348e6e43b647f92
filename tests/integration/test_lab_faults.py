"""Every lab fault does what it says, on one host only, and is undone cleanly."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import paramiko
import pytest

from agent.lab import Lab, LabHost, faults

pytestmark = pytest.mark.integration


def _ssh_ok(lab: Lab, host: LabHost, timeout: float = 5) -> bool:
    client = paramiko.SSHClient()
    client.load_host_keys(lab.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            host.address,
            username="root",
            key_filename=lab.key_file,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            allow_agent=False,
            look_for_keys=False,
        )
        return True
    finally:
        client.close()


def _config_test(host: LabHost) -> int:
    argv = ["nginx", "-t"] if host.server == "nginx" else ["apache2ctl", "-t"]
    return host.exec(argv).returncode


@pytest.fixture(scope="module")
def fault_lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    from tests.integration.conftest import SESSION_FIRST

    lab = Lab.up(
        3, apache=1, first=SESSION_FIRST + 39, dir=tmp_path_factory.mktemp("faultlab") / "s"
    )
    yield lab  # type: ignore[misc]
    lab.down()


def test_sshd_stopped_makes_the_host_unreachable_until_undone(fault_lab: Lab) -> None:
    host, other = fault_lab.hosts[0], fault_lab.hosts[1]
    faults.get("sshd-stopped").inject(host)
    try:
        with pytest.raises(OSError):
            socket.create_connection((host.address, 22), timeout=2).close()
        assert _ssh_ok(fault_lab, other)
    finally:
        faults.get("sshd-stopped").undo(host)
    assert _ssh_ok(fault_lab, host)


def test_a_frozen_sshd_accepts_tcp_but_never_sends_a_banner(fault_lab: Lab) -> None:
    host = fault_lab.hosts[0]
    faults.get("sshd-frozen").inject(host)
    try:
        with socket.create_connection((host.address, 22), timeout=2) as sock:
            sock.settimeout(1.0)
            with pytest.raises(TimeoutError):
                sock.recv(64)
        started = time.monotonic()
        with pytest.raises(paramiko.SSHException):
            _ssh_ok(fault_lab, host, timeout=1)
        assert time.monotonic() - started < 5
    finally:
        faults.get("sshd-frozen").undo(host)
    assert _ssh_ok(fault_lab, host)


def test_a_changed_host_key_is_refused_by_a_strict_client(fault_lab: Lab) -> None:
    host = fault_lab.hosts[1]
    faults.get("host-key-changed").inject(host)
    try:
        with pytest.raises(paramiko.BadHostKeyException):
            _ssh_ok(fault_lab, host)
    finally:
        faults.get("host-key-changed").undo(host)
    assert _ssh_ok(fault_lab, host)


@pytest.mark.parametrize("index", [0, 2])
def test_a_broken_web_config_fails_the_config_test(fault_lab: Lab, index: int) -> None:
    host = fault_lab.hosts[index]
    assert _config_test(host) == 0
    faults.get("web-config-broken").inject(host)
    try:
        assert _config_test(host) != 0
        assert _config_test(fault_lab.hosts[1]) == 0
    finally:
        faults.get("web-config-broken").undo(host)
    assert _config_test(host) == 0


def test_web_stopped_closes_port_80_until_undone(fault_lab: Lab) -> None:
    host = fault_lab.hosts[2]
    faults.get("web-stopped").inject(host)
    try:
        with pytest.raises(OSError):
            socket.create_connection((host.address, 80), timeout=2).close()
    finally:
        faults.get("web-stopped").undo(host)
    socket.create_connection((host.address, 80), timeout=5).close()


@pytest.mark.parametrize("name", ["cert-dir-readonly", "cert-dir-full"])
def test_the_certificate_directory_refuses_writes_on_that_host_only(
    fault_lab: Lab, name: str
) -> None:
    host, other = fault_lab.hosts[0], fault_lab.hosts[1]
    probe = "sh -c 'head -c 65536 /dev/zero > /etc/ssl/origin-agent/lab-probe'"
    faults.get(name).inject(host)
    try:
        assert host.exec(["sh", "-c", probe]).returncode != 0
        other.exec(["mkdir", "-p", "/etc/ssl/origin-agent"], check=True)
        assert other.exec(["sh", "-c", probe]).returncode == 0
    finally:
        faults.get(name).undo(host)
        other.exec(["rm", "-f", "/etc/ssl/origin-agent/lab-probe"])
    assert host.exec(["sh", "-c", probe]).returncode == 0
    host.exec(["rm", "-f", "/etc/ssl/origin-agent/lab-probe"], check=True)


def test_the_fault_command_line_injects_and_undoes(
    fault_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    host = fault_lab.hosts[2]
    assert main(["lab", "--dir", str(fault_lab.dir), "fault", host.name, "web-stopped"]) == 0
    assert host.server_pid() is None
    assert (
        main(["lab", "--dir", str(fault_lab.dir), "fault", host.name, "web-stopped", "--undo"]) == 0
    )
    assert host.server_pid() is not None
    assert "web-stopped undone" in capsys.readouterr().out


def test_an_unknown_fault_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="unknown fault 'nope'.*choose one of"):
        faults.get("nope")


def test_every_fault_is_covered_here() -> None:
    covered = {
        "sshd-stopped",
        "sshd-frozen",
        "host-key-changed",
        "web-config-broken",
        "web-stopped",
        "cert-dir-readonly",
        "cert-dir-full",
        "acme-forbidden",
    }
    assert set(faults.FAULTS) == covered


def test_acme_forbidden_answers_403_on_the_challenge_path(fault_lab: Lab) -> None:
    host = fault_lab.hosts[0]
    site = (
        f"server {{ listen {host.address}:80; server_name acme.lab.test;\n"
        " location ^~ /.well-known/acme-challenge/ { root /var/www/acme; } }\n"
    )
    host.exec(["sh", "-c", f"cat > /etc/nginx/conf.d/lab-acme.conf <<'EOF'\n{site}EOF"], check=True)
    host.exec(["mkdir", "-p", "/var/www/acme/.well-known/acme-challenge"], check=True)
    host.exec(["sh", "-c", "echo tok > /var/www/acme/.well-known/acme-challenge/t"], check=True)
    host.exec(["nginx", "-s", "reload"], check=True)

    def status() -> str:
        with socket.create_connection((host.address, 80), timeout=5) as sock:
            sock.sendall(
                b"GET /.well-known/acme-challenge/t HTTP/1.0\r\nHost: acme.lab.test\r\n\r\n"
            )
            return sock.recv(200).decode().split()[1]

    try:
        # After a reload, old workers answer for a few milliseconds more: wait for a steady 200.
        deadline = time.monotonic() + 5
        streak = 0
        while streak < 5 and time.monotonic() < deadline:
            streak = streak + 1 if status() == "200" else 0
            time.sleep(0.02)
        assert streak == 5
        faults.get("acme-forbidden").inject(host)
        assert status() == "403"
    finally:
        faults.get("acme-forbidden").undo(host)
        host.exec(["rm", "-f", "/etc/nginx/conf.d/lab-acme.conf"])
        host.exec(["nginx", "-s", "reload"])
    _: Callable[..., object] = status
