"""Fact parsers on recorded Debian 12 output, and changes applied through a real Connection
(the local transport on paths under a temporary directory)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.errors import CommandError
from agent.modules.apply import ConnectionApplier
from agent.modules.args import check_args
from agent.modules.base import (
    Context,
    MakeDir,
    RemovePath,
    RunCommand,
    SetAttributes,
    SwapSymlink,
    WriteFile,
)
from agent.modules.command import CommandModule
from agent.modules.copy import CopyModule
from agent.modules.facts import parse_id
from agent.modules.file import FileModule
from agent.modules.package import PackageModule, parse_dpkg_query, parse_rpm_query
from agent.modules.service import ServiceModule
from agent.transport.base import Result
from agent.transport.local import LocalConnection

# dpkg-query -W -f '${Package} ${db:Status-Abbrev}\n' -- nginx bash nonexist-pkg  (Debian 12)
DPKG_STDOUT = "bash ii \nnginx ii \n"
DPKG_STDERR = "dpkg-query: no packages found matching nonexist-pkg\n"
# a removed package keeps its config: status "rc"
DPKG_REMOVED = "apache2 rc \n"


def test_dpkg_query_parser_reads_installed_packages() -> None:
    result = Result(("dpkg-query",), 1, DPKG_STDOUT, DPKG_STDERR)
    assert parse_dpkg_query(result) == frozenset({"bash", "nginx"})
    assert parse_dpkg_query(Result(("dpkg-query",), 0, DPKG_REMOVED, "")) == frozenset()


def test_rpm_query_parser_ignores_not_installed_lines() -> None:
    out = "httpd\npackage mod_ssl is not installed\n"
    assert parse_rpm_query(Result(("rpm",), 1, out, ""), ["httpd", "mod_ssl"]) == {"httpd"}


def test_id_parsers() -> None:
    assert parse_id(Result(("id",), 0, "0\n", "")) == 0
    assert parse_id(Result(("getent",), 0, "www-data:x:33:\n", "")) == 33
    assert parse_id(Result(("getent",), 2, "", "")) is None


@pytest.fixture
def conn() -> LocalConnection:
    return LocalConnection("local-test")


def ctx(**kw: object) -> Context:
    return Context(host="local-test", now=datetime(2026, 1, 1, tzinfo=UTC), **kw)  # type: ignore[arg-type]


def run_module(
    module: object, args: dict[str, object], conn: LocalConnection, check: bool = False
) -> tuple[bool, list[str]]:
    params, problems = check_args(type(module), args)  # type: ignore[arg-type]
    assert not problems
    result = module.run(conn, params, ctx(check=check), ConnectionApplier(conn))  # type: ignore[attr-defined]
    return result.changed, [c.describe() for c in result.changes]


def test_applier_writes_mkdirs_links_and_rolls_back_byte_identical(
    tmp_path: Path, conn: LocalConnection
) -> None:
    existing = tmp_path / "site.conf"
    existing.write_bytes(b"original\n")
    existing.chmod(0o640)
    link = tmp_path / "live"
    link.symlink_to("v1")
    applier = ConnectionApplier(conn)
    applier.apply(
        [
            MakeDir(str(tmp_path / "v2"), 0o750),
            WriteFile(str(tmp_path / "v2" / "key.pem"), b"k", 0o600, secret=True),
            WriteFile(str(existing), b"changed\n", 0o644),
            SwapSymlink(str(link), "v2"),
            SetAttributes(str(existing), mode=0o600),
        ]
    )
    assert stat.S_IMODE(os.stat(tmp_path / "v2").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(tmp_path / "v2" / "key.pem").st_mode) == 0o600
    assert os.readlink(link) == "v2"
    assert existing.read_bytes() == b"changed\n"
    assert applier.rollback() == []
    assert existing.read_bytes() == b"original\n"
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640
    assert os.readlink(link) == "v1"
    assert not (tmp_path / "v2").exists()


def test_applier_reports_commands_it_cannot_undo(tmp_path: Path, conn: LocalConnection) -> None:
    applier = ConnectionApplier(conn)
    results = applier.apply([RunCommand(("true",)), RemovePath(str(tmp_path / "none"))])
    assert results[0] is not None and results[0].ok
    left = applier.rollback()
    assert len(left) == 1 and "cannot undo a command" in left[0]


def test_failing_command_raises_command_error(conn: LocalConnection) -> None:
    with pytest.raises(CommandError, match="exited 3"):
        ConnectionApplier(conn).apply([RunCommand(("sh", "-c", "exit 3"))])


def test_copy_converges_then_reports_no_change(tmp_path: Path, conn: LocalConnection) -> None:
    dest = str(tmp_path / "a.txt")
    args = {"dest": dest, "content": "hello\n", "mode": "0600"}
    assert run_module(CopyModule(), args, conn)[0] is True
    assert Path(dest).read_bytes() == b"hello\n"
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert run_module(CopyModule(), args, conn) == (False, [])


def test_check_mode_changes_nothing_but_reports_the_change(
    tmp_path: Path, conn: LocalConnection
) -> None:
    dest = tmp_path / "a.txt"
    dest.write_bytes(b"old\n")
    changed, lines = run_module(
        CopyModule(), {"dest": str(dest), "content": "new\n"}, conn, check=True
    )
    assert changed and lines == [f"write {dest} (4 bytes) mode=0644"]
    assert dest.read_bytes() == b"old\n"
    marker = tmp_path / "ran"
    changed, _ = run_module(CommandModule(), {"cmd": ["touch", str(marker)]}, conn, check=True)
    assert changed and not marker.exists()


def test_file_module_converges_directory_link_absent(tmp_path: Path, conn: LocalConnection) -> None:
    d = str(tmp_path / "d")
    assert run_module(FileModule(), {"path": d, "state": "directory", "mode": "0700"}, conn)[0]
    assert not run_module(FileModule(), {"path": d, "state": "directory", "mode": "0700"}, conn)[0]
    link = str(tmp_path / "l")
    assert run_module(FileModule(), {"path": link, "state": "link", "src": d}, conn)[0]
    assert os.readlink(link) == d
    assert run_module(FileModule(), {"path": d, "state": "absent"}, conn)[0]
    assert not os.path.exists(d)


def test_command_creates_guard_reads_the_host(tmp_path: Path, conn: LocalConnection) -> None:
    marker = tmp_path / "m"
    args = {"cmd": ["touch", str(marker)], "creates": str(marker)}
    assert run_module(CommandModule(), args, conn)[0]
    assert run_module(CommandModule(), args, conn) == (False, [])


def test_package_module_sees_installed_packages_here(conn: LocalConnection) -> None:
    assert run_module(PackageModule(), {"name": ["bash", "coreutils"]}, conn) == (False, [])
    changed, lines = run_module(
        PackageModule(), {"name": "origin-agent-no-such-pkg"}, conn, check=True
    )
    assert changed and "apt-get install" in lines[0]


def test_service_module_detects_sysv_script_here(conn: LocalConnection) -> None:
    # No systemd in this VM: the init.d script is used; nginx is not running as a service.
    changed, lines = run_module(
        ServiceModule(), {"name": "nginx", "state": "stopped"}, conn, check=True
    )
    assert (changed, lines) == (False, []) or lines == ["run /etc/init.d/nginx stop"]
    changed, lines = run_module(
        ServiceModule(), {"name": "nginx", "state": "reloaded"}, conn, check=True
    )
    assert changed and lines[0].startswith("run /etc/init.d/nginx ")
