"""The lab gives real, separate origin hosts and cleans up after itself."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import paramiko
import pytest
import yaml

from agent.errors import LabError
from agent.lab import Lab

pytestmark = pytest.mark.integration


def _ssh(lab: Lab, address: str, known_hosts: str | None = None) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts or lab.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        address,
        username="root",
        key_filename=lab.key_file,
        timeout=10,
        allow_agent=False,
        look_for_keys=False,
    )
    return client


def _run(client: paramiko.SSHClient, command: str) -> str:
    _, stdout, stderr = client.exec_command(command, timeout=20)
    out = stdout.read().decode()
    assert stdout.channel.recv_exit_status() == 0, stderr.read().decode()
    return out


def test_every_host_answers_ssh_with_strict_host_key_checking(lab: Lab) -> None:
    for host in lab.hosts:
        client = _ssh(lab, host.address)
        try:
            assert _run(client, "hostname").strip() == host.name
        finally:
            client.close()


def test_a_host_key_missing_from_known_hosts_is_refused(lab: Lab, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"
    lines = Path(lab.known_hosts).read_text().splitlines()
    other.write_text(
        "\n".join(line for line in lines if not line.startswith(lab.hosts[0].address + ",")) + "\n"
    )
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        _ssh(lab, lab.hosts[0].address, str(other))


def test_each_hosts_files_are_its_own(lab: Lab) -> None:
    h1, h2 = lab.hosts[0], lab.hosts[1]
    client = _ssh(lab, h1.address)
    try:
        for d in ("/etc", "/var/lib", "/usr/local"):
            _run(client, f"echo mine > {d}/lab-test-own-file")
    finally:
        client.close()
    for d in ("/etc", "/var/lib", "/usr/local"):
        path = f"{d}/lab-test-own-file"
        assert Path(h1.path(path)).read_text() == "mine\n"
        assert not Path(h2.path(path)).exists()
        assert not Path(path).exists()
        h1.exec(["rm", path], check=True)


def test_run_tmp_and_root_are_private(lab: Lab) -> None:
    h1, h2 = lab.hosts[0], lab.hosts[1]
    for d in ("/run", "/tmp", "/root"):
        h1.exec(["sh", "-c", f"echo x > {d}/lab-private"], check=True)
        assert h2.exec(["test", "-e", f"{d}/lab-private"]).returncode == 1
        assert not Path(f"{d}/lab-private").exists()
        h1.exec(["rm", f"{d}/lab-private"], check=True)


def test_hosts_serve_plain_http_only_like_a_flexible_origin(lab: Lab) -> None:
    for host in lab.hosts:
        with socket.create_connection((host.address, 80), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            reply = sock.recv(65536).decode(errors="replace")
            while "</p>" not in reply:
                chunk = sock.recv(65536).decode(errors="replace")
                if not chunk:
                    break
                reply += chunk
        assert " 200 " in reply.splitlines()[0]
        assert f"{host.name} ({host.server})" in reply
        with pytest.raises(OSError):
            socket.create_connection((host.address, 443), timeout=2).close()


def test_each_host_has_only_its_own_web_server(lab: Lab) -> None:
    nginx = next(h for h in lab.hosts if h.server == "nginx")
    apache = next(h for h in lab.hosts if h.server == "apache")
    assert nginx.exec(["test", "-e", "/usr/sbin/apache2ctl"]).returncode == 1
    assert apache.exec(["test", "-e", "/usr/sbin/nginx"]).returncode == 1
    assert apache.exec(["dpkg-query", "-W", "nginx"]).returncode != 0
    assert nginx.exec(["dpkg-query", "-W", "nginx"]).returncode == 0


def _children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_reloading_one_hosts_server_leaves_the_others_untouched(lab: Lab, server: str) -> None:
    first, second = [h for h in lab.hosts if h.server == server][:2]
    master1, master2 = first.server_pid(), second.server_pid()
    assert master1 and master2
    workers1, workers2 = _children(master1), _children(master2)
    client = _ssh(lab, first.address)
    try:
        _run(client, "nginx -s reload" if server == "nginx" else "apache2ctl graceful")
    finally:
        client.close()
    deadline_checks = 200
    while _children(master1) & workers1 and deadline_checks:
        deadline_checks -= 1
        subprocess.run(["sleep", "0.05"])
    assert not (_children(master1) & workers1), "the reloaded server kept its old workers"
    assert first.server_pid() == master1
    assert second.server_pid() == master2
    assert _children(master2) == workers2


def test_lab_down_leaves_no_process(make_lab: Callable[..., Lab]) -> None:
    small = make_lab(2, apache=1)
    pids = [pid for host in small.hosts for pid in host.pids()]
    assert len(pids) >= 6
    small.down()
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    assert alive == []
    assert not small.dir.exists()


def test_an_address_already_taken_is_a_clear_error(
    make_lab: Callable[..., Lab], tmp_path: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.1.250", 80))
        sock.listen()
        with pytest.raises(LabError, match=r"127\.0\.1\.250:80 is already taken"):
            Lab.up(1, first=250, dir=tmp_path / "taken")
    assert not (tmp_path / "taken" / "lab.json").exists()


def test_the_inventory_names_every_host_grouped_by_server(lab: Lab) -> None:
    data = yaml.safe_load(Path(lab.inventory_path).read_text())
    groups = data["all"]["children"]
    assert sorted(groups["nginx"]["hosts"]) == [h.name for h in lab.hosts if h.server == "nginx"]
    assert sorted(groups["apache"]["hosts"]) == [h.name for h in lab.hosts if h.server == "apache"]
    assert groups["nginx"]["hosts"][lab.hosts[0].name]["ansible_host"] == lab.hosts[0].address
    assert data["all"]["vars"]["ansible_ssh_private_key_file"] == lab.key_file
    assert data["all"]["vars"]["known_hosts"] == lab.known_hosts


def test_cli_lab_up_status_inventory_down(tmp_path: Path) -> None:
    env = dict(os.environ, ORIGIN_AGENT_LAB_DIR=str(tmp_path / "cli-lab"))
    cli = [sys.executable, "-m", "agent", "lab"]
    from tests.integration.conftest import PRIVATE_FIRST

    first = str(PRIVATE_FIRST + 40)
    up = subprocess.run(
        [*cli, "up", "2", "--apache", "1", "--first", first],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        assert up.returncode == 0, up.stderr
        assert "lab up: 2 hosts" in up.stdout
        status = subprocess.run(
            [*cli, "status"], env=env, capture_output=True, text=True, timeout=30
        )
        assert status.returncode == 0
        assert f"origin{first}" in status.stdout and "apache" in status.stdout
        again = subprocess.run(
            [*cli, "up", "1", "--first", first], env=env, capture_output=True, text=True, timeout=30
        )
        assert again.returncode == 1
        assert "a lab is already up" in again.stderr
        assert "Traceback" not in again.stderr
    finally:
        down = subprocess.run([*cli, "down"], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert "processes stopped" in down.stdout
    gone = subprocess.run([*cli, "status"], env=env, capture_output=True, text=True, timeout=30)
    assert gone.returncode == 1 and "no lab is up" in gone.stderr


def test_the_lab_refuses_to_run_without_root(tmp_path: Path) -> None:
    script = "from agent.lab import Lab; Lab.up(1, first=251, dir=__import__('pathlib').Path('/nonexistent'))"
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=str(Path(__file__).resolve().parents[2]),
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])),
    )
    assert result.returncode != 0
    assert "the lab needs root" in result.stderr


def test_lab_errors_name_the_lab(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no lab is up"):
        Lab.load(tmp_path / "none")
    with pytest.raises(LabError, match="cannot exceed"):
        Lab.up(2, apache=3, dir=tmp_path / "x")
