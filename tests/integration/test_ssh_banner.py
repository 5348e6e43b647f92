"""An SSH server that accepts and never sends its banner: the CLI (a real subprocess) says so
in one line on stderr, and paramiko's own traceback stays out of it (shown with -vvv only)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ADDRESS = "127.0.0.3"
PLAN = "- name: p\n  hosts: all\n  tasks:\n    - name: t\n      command: {cmd: 'true'}\n"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP listener that accepts connections and never writes a byte."""
    server = socket.create_server((ADDRESS, 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(timeout=5)
    for conn in held:
        conn.close()


def _inventory(tmp_path: Path, port: int) -> Path:
    (tmp_path / "known_hosts").write_text("")
    host = {
        "ansible_host": ADDRESS,
        "ansible_port": port,
        "ansible_user": "deploy",
        "ansible_timeout": 1,
        "known_hosts": str(tmp_path / "known_hosts"),
        "https_port": 9,  # nothing listens: refused at once
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"silent01": host}}}))
    return path


def _cli(*words: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *words],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_no_banner_is_one_line_on_stderr_without_paramikos_traceback(
    tmp_path: Path, silent_port: int
) -> None:
    inventory = _inventory(tmp_path, silent_port)
    out = _cli("pins", "-i", str(inventory), cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("origin-agent: silent01: next key: no SSH banner from deploy@")
    assert "within 1s" in out.stderr
    assert "Traceback" not in out.stderr and "paramiko" not in out.stderr

    (tmp_path / "plan.yml").write_text(PLAN)
    run = _cli("run", str(tmp_path / "plan.yml"), "-i", str(inventory), cwd=tmp_path)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "no SSH banner" in run.stdout + run.stderr
    assert "Traceback" not in run.stderr and "paramiko" not in run.stderr


def test_paramikos_own_lines_show_when_debugging(tmp_path: Path, silent_port: int) -> None:
    out = _cli("-vvv", "pins", "-i", str(_inventory(tmp_path, silent_port)), cwd=tmp_path)
    assert "paramiko.transport" in out.stderr and "Error reading SSH protocol banner" in out.stderr
