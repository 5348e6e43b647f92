"""What a unit test may not do: start a daemon, need root, touch the machine's system files.

An audit hook (PEP 578) sees every process this interpreter starts, every owner change,
every file opened for writing, every directory made and every socket bound. While a unit test
runs (:func:`active`), any of these fails the test at once with what it tried:

- starting a daemon or a privileged tool: sshd, nginx, apache2(ctl), pebble, cfssl, sudo,
  su, runuser, useradd and friends, mount, unshare, nsenter, systemctl/service, or an init.d
  script asked to start, stop or reload (directly or inside ``sh -c``);
- giving a file to another user or group (``os.chown``, which needs root);
- writing or making a directory under /etc, /usr, /var (but /var/tmp), /boot, /opt, /srv,
  /run or /root;
- binding a port below 1024 (needs root).

Such tests belong in tests/integration. The violation is raised as :class:`UnitGuardError`
(a ``BaseException``, so a test's ``except Exception`` cannot hide it) and also recorded, so
that one swallowed in a thread still fails the test at teardown.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

DAEMONS_AND_PRIVILEGED = frozenset(
    {
        "sshd",
        "nginx",
        "apache2",
        "apache2ctl",
        "apachectl",
        "httpd",
        "pebble",
        "cfssl",
        "multirootca",
        "sudo",
        "su",
        "runuser",
        "setpriv",
        "useradd",
        "usermod",
        "userdel",
        "groupadd",
        "chpasswd",
        "visudo",
        "mount",
        "umount",
        "unshare",
        "nsenter",
        "systemctl",
        "service",
        "invoke-rc.d",
    }
)
PROGRAM_DIRS = frozenset(
    {"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"}
)
INIT_ACTIONS = frozenset({"start", "stop", "restart", "reload", "force-reload"})
SYSTEM_DIRS = ("/etc", "/usr", "/var", "/boot", "/opt", "/srv", "/run", "/root")
ALLOWED_DIRS = ("/var/tmp",)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
SHELLS = frozenset({"sh", "bash", "dash"})
_WORD = re.compile(r"[^\s;&|()<>`$'\"]+")
_UNSET_ID = (-1, 0xFFFFFFFF)


class UnitGuardError(BaseException):
    """A unit test did what only an integration test may do."""


_state = threading.local()
_lock = threading.Lock()
_active = False
violations: list[str] = []


def active() -> bool:
    """Whether the guard is judging what runs now (a unit test is running)."""
    return _active


def set_active(on: bool) -> None:
    global _active
    _active = on


def forbidden_program(word: str) -> bool:
    """``word`` (argv[0] or a word of a shell script) names a daemon or privileged tool."""
    name = os.path.basename(word)
    if name not in DAEMONS_AND_PRIVILEGED:
        return False
    if "/" not in word:
        found = shutil.which(word)
        return found is None or os.path.dirname(found) in PROGRAM_DIRS
    return os.path.dirname(os.path.normpath(word)) in PROGRAM_DIRS


def forbidden_argv(argv: list[str]) -> bool:
    """The command starts a daemon or a privileged tool, itself or through ``sh -c``."""
    if not argv:
        return False
    first = argv[0]
    if forbidden_program(first):
        return True
    if first.startswith("/etc/init.d/") and INIT_ACTIONS & set(argv[1:]):
        return True
    if os.path.basename(first) in SHELLS and "-c" in argv[1:-1]:
        return forbidden_script(argv[argv.index("-c") + 1])
    return False


def forbidden_script(script: str) -> bool:
    """A shell script that runs a daemon or privileged tool, or asks an init script to act."""
    words = _WORD.findall(script)
    for i, word in enumerate(words):
        if forbidden_program(word):
            return True
        if word.startswith("/etc/init.d/") and INIT_ACTIONS & set(words[i + 1 : i + 2]):
            return True
    return False


def system_path(path: object) -> bool:
    """``path`` (str or bytes) lies under a directory of the machine's own system files."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str) or not path.startswith("/"):
        return False
    path = os.path.normpath(path)
    inside = lambda top: path == top or path.startswith(top + "/")  # noqa: E731
    return any(inside(top) for top in SYSTEM_DIRS) and not any(inside(a) for a in ALLOWED_DIRS)


def judge(event: str, args: tuple[Any, ...]) -> str | None:
    """What is wrong with the audit event, or None."""
    if event == "subprocess.Popen" or event in ("os.exec", "os.posix_spawn"):
        argv = [os.fsdecode(a) for a in args[1]] if event != "os.exec" else list(args[1])
        argv = [str(a) for a in argv]
        if forbidden_argv(argv):
            return f"starts {' '.join(argv)[:120]!r}"
    elif event == "os.system":
        script = os.fsdecode(args[0])
        if forbidden_script(script):
            return f"runs {script[:120]!r}"
    elif event == "os.chown":
        uid, gid = args[1], args[2]
        if uid not in (*_UNSET_ID, os.getuid()) or gid not in (*_UNSET_ID, os.getgid()):
            return f"gives {args[0]!r} to uid {uid}, gid {gid} (needs root)"
    elif event == "open":
        flags = args[2]
        if isinstance(flags, int) and flags & WRITE_FLAGS and system_path(args[0]):
            return f"opens {args[0]!r} for writing"
    elif event == "os.mkdir":
        if system_path(args[0]):
            return f"makes the directory {args[0]!r}"
    elif event == "socket.bind":
        address = args[1]
        if isinstance(address, tuple) and len(address) >= 2 and 0 < int(address[1]) < 1024:
            return f"binds the privileged port {address[1]}"
    return None


def audit(event: str, args: tuple[Any, ...]) -> None:
    """The audit hook: cheap when inactive, never re-entered by its own work."""
    if not _active or getattr(_state, "busy", False):
        return
    _state.busy = True
    try:
        problem = judge(event, args)
    finally:
        _state.busy = False
    if problem is not None:
        message = f"a unit test {problem}: that belongs in tests/integration"
        with _lock:
            violations.append(message)
        raise UnitGuardError(message)


def take_violations() -> list[str]:
    """The violations recorded since the last call (and forget them)."""
    with _lock:
        found = list(violations)
        violations.clear()
    return found


@contextmanager
def expect_violation() -> Iterator[list[str]]:
    """For the guard's own tests: the block must trip the guard; the list gets the message."""
    caught: list[str] = []
    try:
        yield caught
    except UnitGuardError as err:
        caught.append(str(err))
    take_violations()
    if not caught:
        raise AssertionError("the unit guard let it through")
