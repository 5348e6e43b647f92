"""Planning as data: facts in, changes out, one named scenario per case (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from agent.modules import registry
from agent.modules.args import check_args
from agent.modules.base import (
    Change,
    Context,
    MakeDir,
    ModuleError,
    RemovePath,
    RunCommand,
    SetAttributes,
    SwapSymlink,
    WriteFile,
)
from agent.modules.command import GuardFacts
from agent.modules.copy import FileFacts
from agent.modules.facts import PathFacts
from agent.modules.package import PackageFacts
from agent.modules.service import ServiceFacts
from agent.transport.base import FileStat, Owner

CTX = Context(host="web-1", now=datetime(2026, 1, 1, tzinfo=UTC))


def missing(path: str) -> PathFacts:
    return PathFacts(FileStat(path, exists=False))


def file_at(
    path: str,
    content: bytes | None = None,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    want_uid: int | None = None,
    want_gid: int | None = None,
) -> PathFacts:
    return PathFacts(
        FileStat(path, True, "file", mode, uid, gid, len(content or b"")),
        content,
        want_uid,
        want_gid,
    )


def dir_at(path: str, mode: int = 0o755) -> PathFacts:
    return PathFacts(FileStat(path, True, "dir", mode, 0, 0))


def link_at(path: str, target: str) -> PathFacts:
    return PathFacts(FileStat(path, True, "link", 0o777, 0, 0, link_target=target))


def plan(module: str, args: dict[str, Any], facts: Any) -> list[Change]:
    cls = registry.get(module)
    params, problems = check_args(cls, args)
    assert not problems, [p.message for p in problems]
    return cls().plan(params, facts, CTX)


CASES: list[tuple[str, str, dict[str, Any], Any, list[Change]]] = [
    (
        "command_runs_its_argv",
        "command",
        {"cmd": "echo 'a b' c"},
        GuardFacts(),
        [RunCommand(("echo", "a b", "c"))],
    ),
    (
        "command_skips_when_creates_exists",
        "command",
        {"cmd": ["touch", "/x"], "creates": "/x"},
        GuardFacts(creates_exists=True),
        [],
    ),
    (
        "command_runs_when_creates_missing",
        "command",
        {"cmd": ["touch", "/x"], "creates": "/x"},
        GuardFacts(creates_exists=False),
        [RunCommand(("touch", "/x"))],
    ),
    (
        "command_skips_when_removes_missing",
        "command",
        {"cmd": ["rm", "/x"], "removes": "/x"},
        GuardFacts(removes_exists=False),
        [],
    ),
    (
        "command_chdir_uses_env",
        "command",
        {"cmd": ["ls"], "chdir": "/srv"},
        GuardFacts(),
        [RunCommand(("env", "-C", "/srv", "--", "ls"))],
    ),
    (
        "shell_runs_sh_c",
        "shell",
        {"cmd": "echo $HOME | wc -c"},
        GuardFacts(),
        [RunCommand(("/bin/sh", "-c", "echo $HOME | wc -c"))],
    ),
    (
        "copy_writes_new_file_0644",
        "copy",
        {"dest": "/etc/a", "content": "x\n"},
        FileFacts(b"x\n", missing("/etc/a")),
        [WriteFile("/etc/a", b"x\n", 0o644)],
    ),
    (
        "copy_same_content_is_ok",
        "copy",
        {"dest": "/etc/a", "content": "x\n"},
        FileFacts(b"x\n", file_at("/etc/a", b"x\n")),
        [],
    ),
    (
        "copy_keeps_existing_mode_when_not_given",
        "copy",
        {"dest": "/etc/a", "content": "y"},
        FileFacts(b"y", file_at("/etc/a", b"x", mode=0o640)),
        [WriteFile("/etc/a", b"y", 0o640)],
    ),
    (
        "copy_only_fixes_mode",
        "copy",
        {"dest": "/etc/a", "content": "x", "mode": "0600"},
        FileFacts(b"x", file_at("/etc/a", b"x", mode=0o644)),
        [SetAttributes("/etc/a", 0o600)],
    ),
    (
        "copy_only_fixes_owner",
        "copy",
        {"dest": "/etc/a", "content": "x", "owner": "www:www"},
        FileFacts(b"x", file_at("/etc/a", b"x", want_uid=33, want_gid=33)),
        [SetAttributes("/etc/a", None, Owner("www", "www"))],
    ),
    (
        "copy_secret_file",
        "copy",
        {"dest": "/k", "content": "KEY", "mode": "0600", "secret": True},
        FileFacts(b"KEY", missing("/k")),
        [WriteFile("/k", b"KEY", 0o600, secret=True)],
    ),
    (
        "file_directory_created",
        "file",
        {"path": "/d", "state": "directory", "mode": "0750"},
        missing("/d"),
        [MakeDir("/d", 0o750)],
    ),
    (
        "file_directory_mode_fixed",
        "file",
        {"path": "/d", "state": "directory", "mode": "0750"},
        dir_at("/d", 0o755),
        [SetAttributes("/d", 0o750)],
    ),
    ("file_directory_in_state", "file", {"path": "/d", "state": "directory"}, dir_at("/d"), []),
    (
        "file_absent_removes_dir_recursively",
        "file",
        {"path": "/d", "state": "absent"},
        dir_at("/d"),
        [RemovePath("/d", recursive=True)],
    ),
    (
        "file_absent_when_missing_is_ok",
        "file",
        {"path": "/d", "state": "absent"},
        missing("/d"),
        [],
    ),
    (
        "file_link_created",
        "file",
        {"path": "/l", "state": "link", "src": "/t"},
        missing("/l"),
        [SwapSymlink("/l", "/t")],
    ),
    (
        "file_link_swapped",
        "file",
        {"path": "/l", "state": "link", "src": "/t2"},
        link_at("/l", "/t1"),
        [SwapSymlink("/l", "/t2")],
    ),
    (
        "file_link_in_state",
        "file",
        {"path": "/l", "state": "link", "src": "/t"},
        link_at("/l", "/t"),
        [],
    ),
    (
        "file_touch_creates_empty",
        "file",
        {"path": "/f", "state": "touch"},
        missing("/f"),
        [WriteFile("/f", b"", 0o644)],
    ),
    (
        "file_touch_existing_is_ok",
        "file",
        {"path": "/f", "state": "touch"},
        file_at("/f", b"data"),
        [],
    ),
    (
        "package_installs_missing_only",
        "package",
        {"name": ["nginx", "curl"]},
        PackageFacts("apt", frozenset({"nginx"})),
        [
            RunCommand(
                (
                    "env",
                    "DEBIAN_FRONTEND=noninteractive",
                    "apt-get",
                    "install",
                    "-y",
                    "-q",
                    "--no-install-recommends",
                    "--",
                    "curl",
                )
            )
        ],
    ),
    (
        "package_present_is_ok",
        "package",
        {"name": "nginx"},
        PackageFacts("apt", frozenset({"nginx"})),
        [],
    ),
    (
        "package_dnf_remove",
        "package",
        {"name": "httpd", "state": "absent"},
        PackageFacts("dnf", frozenset({"httpd"})),
        [RunCommand(("dnf", "remove", "-y", "-q", "--", "httpd"))],
    ),
    (
        "service_started_when_stopped",
        "service",
        {"name": "nginx", "state": "started"},
        ServiceFacts("sysv", False),
        [RunCommand(("/etc/init.d/nginx", "start"))],
    ),
    (
        "service_started_when_running_is_ok",
        "service",
        {"name": "nginx", "state": "started"},
        ServiceFacts("systemd", True),
        [],
    ),
    (
        "service_stopped_with_systemd",
        "service",
        {"name": "nginx", "state": "stopped"},
        ServiceFacts("systemd", True),
        [RunCommand(("systemctl", "stop", "--", "nginx"))],
    ),
    (
        "service_reload_own_command",
        "service",
        {"name": "nginx", "state": "reloaded"},
        ServiceFacts("own", True),
        [RunCommand(("nginx", "-s", "reload"))],
    ),
    (
        "service_reload_of_stopped_starts",
        "service",
        {"name": "apache2", "state": "reloaded"},
        ServiceFacts("sysv", False),
        [RunCommand(("/etc/init.d/apache2", "start"))],
    ),
]


@pytest.mark.parametrize("name,module,args,facts,expected", CASES, ids=[c[0] for c in CASES])
def test_planning_case(
    name: str, module: str, args: dict[str, Any], facts: Any, expected: list[Change]
) -> None:
    assert plan(module, args, facts) == expected


ERRORS: list[tuple[str, str, dict[str, Any], Any, str]] = [
    ("file_state_file_requires_existing", "file", {"path": "/f"}, missing("/f"), "does not exist"),
    (
        "file_directory_over_a_file",
        "file",
        {"path": "/f", "state": "directory"},
        file_at("/f"),
        "not a directory",
    ),
    (
        "file_link_over_file_needs_force",
        "file",
        {"path": "/f", "state": "link", "src": "/t"},
        file_at("/f"),
        "force",
    ),
    (
        "copy_owner_unknown_user",
        "copy",
        {"dest": "/a", "content": "x", "owner": "nobody9"},
        FileFacts(b"x", file_at("/a", b"x")),
        "no such user",
    ),
    (
        "copy_over_directory",
        "copy",
        {"dest": "/a", "content": "x"},
        FileFacts(b"x", dir_at("/a")),
        "not a file",
    ),
    (
        "package_without_manager",
        "package",
        {"name": "x"},
        PackageFacts("", frozenset()),
        "no supported package manager",
    ),
    (
        "service_unknown",
        "service",
        {"name": "foo", "state": "started"},
        ServiceFacts("", False),
        "not found",
    ),
]


@pytest.mark.parametrize("name,module,args,facts,message", ERRORS, ids=[c[0] for c in ERRORS])
def test_planning_refuses(
    name: str, module: str, args: dict[str, Any], facts: Any, message: str
) -> None:
    with pytest.raises(ModuleError, match=message) as info:
        plan(module, args, facts)
    assert str(info.value).startswith("web-1: ")


def test_secret_write_never_shows_content() -> None:
    change = WriteFile("/k", b"PRIVATE KEY", 0o600, secret=True, before=b"OLD KEY")
    assert "PRIVATE" not in change.describe() + change.diff() + repr(change)
    assert "OLD" not in change.diff()


def test_diff_of_plain_file_is_unified() -> None:
    change = WriteFile("/etc/a", b"one\ntwo\n", before=b"one\n")
    assert change.diff().splitlines()[-1] == "+two"
    assert WriteFile("/etc/a", b"x").diff().startswith("--- /dev/null")


@pytest.mark.parametrize(
    "args,message",
    [
        ({"dest": "/a"}, "exactly one of"),
        ({"dest": "/a", "content": "x", "src": "f"}, "exactly one of"),
        ({"dest": "rel", "content": "x"}, "absolute path"),
        ({"dest": "/a", "content": "x", "mode": "644x"}, "octal mode"),
        ({"dest": "/a", "content": "x", "owner": "root;rm"}, "invalid owner"),
        ({"dest": "/a", "content": "x", "bogus": 1}, "unknown argument 'bogus'"),
    ],
)
def test_copy_argument_problems(args: dict[str, Any], message: str) -> None:
    _, problems = check_args(registry.get("copy"), args)
    assert any(message in p.message for p in problems), [p.message for p in problems]


@pytest.mark.parametrize(
    "module,args,message",
    [
        ("package", {"name": "-oAPT::x"}, "invalid package name"),
        ("service", {"name": "../x", "state": "started"}, "invalid service name"),
        ("service", {"name": "nginx", "state": "start"}, "did you mean 'started'"),
        ("file", {"path": "/l", "state": "link"}, "needs 'src'"),
    ],
)
def test_values_bound_for_commands_are_validated(
    module: str, args: dict[str, Any], message: str
) -> None:
    _, problems = check_args(registry.get(module), args)
    assert any(message in p.message for p in problems), [p.message for p in problems]
