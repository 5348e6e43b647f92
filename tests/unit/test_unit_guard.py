"""The unit suite cannot start daemons, need root or touch system files (tests.unit.guard),
and no unit test asks whether it runs as root."""

from __future__ import annotations

import ast
import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tests.unit import guard


def test_the_guard_judges_every_unit_test() -> None:
    assert guard.active()


@pytest.mark.parametrize(
    "argv",
    [
        ["/usr/sbin/sshd", "-t", "-f", "/nonexistent/sshd_config"],
        ["nginx", "-v"],
        ["sudo", "-n", "true"],
        ["useradd", "--help"],
        ["sh", "-c", "true && /usr/sbin/apache2ctl -v"],
        ["/etc/init.d/nginx", "reload"],
    ],
)
def test_starting_a_daemon_or_privileged_tool_trips_the_guard(argv: list[str]) -> None:
    with guard.expect_violation() as caught:
        subprocess.run(argv, capture_output=True, check=False, timeout=10)
    assert "belongs in tests/integration" in caught[0]


def test_ordinary_programs_and_init_script_queries_pass() -> None:
    assert not guard.forbidden_argv(["sh", "-c", "printf out; echo nginx-site >&2"])
    assert not guard.forbidden_argv(["/etc/init.d/nginx", "status"])
    assert not guard.forbidden_argv(["/tmp/x/sshd"])  # a stand-in, not the daemon
    assert subprocess.run(["true"], check=False).returncode == 0


def test_giving_a_file_to_another_user_trips_the_guard(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    os.chown(path, os.getuid(), -1)  # one's own: allowed
    other = 65534 if os.getuid() != 65534 else 0
    with guard.expect_violation():
        os.chown(path, other, -1)


def test_writing_system_files_trips_the_guard() -> None:
    with guard.expect_violation():
        os.open("/etc/origin-agent-unit-guard/x", os.O_WRONLY)  # never exists: harmless
    with guard.expect_violation():
        os.mkdir("/run/origin-agent-unit-guard/x")
    assert not guard.system_path("/var/tmp/x") and not guard.system_path("/etcx")


def test_binding_a_privileged_port_trips_the_guard() -> None:
    with socket.socket() as sock, guard.expect_violation():
        sock.bind(("127.0.0.1", 1))


def test_a_violation_swallowed_in_a_thread_is_still_recorded() -> None:
    def sneaky() -> None:
        try:
            subprocess.run(["/usr/sbin/sshd", "-t"], capture_output=True, check=False)
        except BaseException:
            pass

    thread = threading.Thread(target=sneaky)
    thread.start()
    thread.join()
    found = guard.take_violations()
    assert len(found) == 1 and "sshd" in found[0]


def test_no_unit_test_asks_whether_it_runs_as_root() -> None:
    """A test that checks for root (``os.geteuid() == 0``) needs it: it is an integration test."""
    unit = Path(__file__).parent
    asking = []
    for path in sorted(unit.rglob("*.py")):
        if path.name == "guard.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "geteuid"
                and path != Path(__file__)
            ):
                asking.append(f"{path.relative_to(unit)}:{node.lineno}")
    assert asking == []
