"""Pieces shared by the local and SSH transports: temporary names, ``sudo`` argv, stat kinds.

Nothing here does I/O; both transports build on these so the two behave the same way.
"""

from __future__ import annotations

import secrets
import stat as stat_mod

from agent.errors import CommandError
from agent.transport.base import Result
from agent.transport.quote import join

TEMP_PREFIX = ".origin-agent-tmp-"
"""Every temporary file a write creates starts with this, so leftovers can be found and removed."""

SUDO_MARKER_PREFIX = "origin-agent-become-"


def temp_name(directory: str) -> str:
    """Return a fresh temporary path inside ``directory`` (same filesystem as the target)."""
    base = directory.rstrip("/") or ""
    return f"{base}/{TEMP_PREFIX}{secrets.token_hex(8)}"


def split_path(path: str) -> tuple[str, str]:
    """Return ``(directory, name)`` of an absolute or relative POSIX path."""
    head, _, tail = path.rpartition("/")
    if not head and path.startswith("/"):
        head = "/"
    return (head or ".", tail)


def kind_of(st_mode: int) -> str:
    """Map a ``st_mode`` to the :class:`FileStat` kind names."""
    if stat_mod.S_ISLNK(st_mode):
        return "link"
    if stat_mod.S_ISDIR(st_mode):
        return "dir"
    if stat_mod.S_ISREG(st_mode):
        return "file"
    return "other"


def become_needed(login_user: str, become_user: str) -> bool:
    """``become`` is a no-op when we already are the user asked for."""
    return login_user != become_user


def sudo_argv(become_user: str, marker: str) -> list[str]:
    """The prefix that runs a command as ``become_user``.

    ``-S`` reads a password from stdin, ``-p`` sets a prompt we recognise on stderr, ``-k``
    ignores cached credentials so the prompt is predictable. The command itself starts with
    ``sh -c 'printf MARKER >&2; exec "$@"'`` so the caller sees on stderr when sudo is done
    asking and the command's own stdin begins: a password is only ever written after the
    prompt, never into the command's input.
    """
    return [
        "sudo",
        "-k",
        "-S",
        "-p",
        f"[{marker}-prompt]",
        "-u",
        become_user,
        "--",
        "sh",
        "-c",
        f'printf "%s\\n" "[{marker}-start]" >&2; exec "$@"',
        "sh",
    ]


def new_marker() -> str:
    """A random marker used to frame the sudo prompt and the start of the command."""
    return SUDO_MARKER_PREFIX + secrets.token_hex(6)


def command_line(argv: list[str] | tuple[str, ...], *, become_user: str | None, marker: str) -> str:
    """Shell text for ``argv``, wrapped in ``sudo`` when ``become_user`` is given."""
    parts = list(argv)
    if become_user is not None:
        parts = sudo_argv(become_user, marker) + parts
    return join(parts)


def display(argv: list[str] | tuple[str, ...], limit: int = 120) -> str:
    """A short, quoted rendering of argv for messages."""
    text = join(argv)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_text(data: bytes | str | None) -> str:
    """Decode command output (UTF-8, undecodable bytes replaced)."""
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", errors="replace")


def command_failed(host: str, result: Result) -> CommandError:
    """The error for a command that exited non-zero; the message ends with the last stderr line."""
    tail = result.stderr[-2000:]
    last = next((ln.strip() for ln in reversed(tail.splitlines()) if ln.strip()), "")
    msg = f"{display(result.argv)} exited {result.exit_code}"
    if last:
        msg += f": {last[:200]}"
    return CommandError(msg, host=host, argv=result.argv, exit_code=result.exit_code, stderr=tail)
