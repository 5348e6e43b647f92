"""The one vocabulary of changes: what a module, a server adapter or the origin transaction
asks to be done to a host (write a file, swap a symlink, run a command...).

Each change is a frozen dataclass that describes itself in one line (check mode, JSON output)
and renders its diff (``--diff``). They live with the transport because they are what a
connection can do, and every layer above (servers, modules) speaks them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import ClassVar

from agent.transport.base import Owner


class Change:
    """Base of every change a module can ask for. Subclasses are frozen dataclasses."""

    #: False for changes that do not alter the host (e.g. :class:`NotifyHandler`).
    alters_host: ClassVar[bool] = True

    def describe(self) -> str:
        """One line for check mode and the JSON output; never contains secret data."""
        raise NotImplementedError

    def diff(self) -> str:
        """Unified diff text for ``--diff`` (empty when the change has none)."""
        return ""


def _mode(mode: int | None) -> str:
    return "" if mode is None else f" mode={mode:04o}"


def _owner(owner: Owner | None) -> str:
    if owner is None or (owner.user is None and owner.group is None):
        return ""
    return f" owner={owner.user or ''}:{owner.group or ''}"


@dataclass(frozen=True)
class WriteFile(Change):
    """Write ``data`` to ``path`` atomically with ``mode`` from the first byte.

    ``before`` is the current content when the module knows it (for the diff only);
    ``secret`` files never show their content, in diffs or anywhere else.
    """

    path: str
    data: bytes = field(repr=False)
    mode: int = 0o644
    owner: Owner | None = None
    secret: bool = False
    before: bytes | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        what = "secret file" if self.secret else f"{len(self.data)} bytes"
        return f"write {self.path} ({what}){_mode(self.mode)}{_owner(self.owner)}"

    def diff(self) -> str:
        return file_diff(self.path, self.before, self.data, secret=self.secret)


@dataclass(frozen=True)
class MakeDir(Change):
    """Create directory ``path`` (and missing parents) with ``mode``."""

    path: str
    mode: int = 0o755
    owner: Owner | None = None

    def describe(self) -> str:
        return f"create directory {self.path}{_mode(self.mode)}{_owner(self.owner)}"


@dataclass(frozen=True)
class SwapSymlink(Change):
    """Point symlink ``path`` at ``target`` in one atomic rename (replacing any old link)."""

    path: str
    target: str
    previous: str | None = field(default=None, compare=False)

    def describe(self) -> str:
        old = f" (was {self.previous})" if self.previous else ""
        return f"link {self.path} -> {self.target}{old}"


@dataclass(frozen=True)
class RemovePath(Change):
    """Remove ``path``; ``recursive`` for a directory tree."""

    path: str
    recursive: bool = False

    def describe(self) -> str:
        return f"remove {self.path}{' (recursively)' if self.recursive else ''}"


@dataclass(frozen=True)
class SetAttributes(Change):
    """Change the mode and/or owner of an existing ``path`` (``None``: leave as is)."""

    path: str
    mode: int | None = None
    owner: Owner | None = None

    def describe(self) -> str:
        return f"set {self.path}{_mode(self.mode)}{_owner(self.owner)}"


@dataclass(frozen=True)
class RunCommand(Change):
    """Run ``argv`` (never through a shell unless argv itself names one).

    ``check``: a non-zero exit fails the task. ``stdin`` is secret-safe: it is never shown.
    ``changed`` False marks a command that only reads (it is still run in normal mode).
    ``unless``: argvs that all exit 0 once the command's work is done (then it is skipped;
    e.g. ``a2query -q -m ssl`` for ``a2enmod ssl``).
    """

    argv: tuple[str, ...]
    stdin: bytes | None = field(default=None, repr=False)
    check: bool = True
    changed: bool = True
    become: bool | None = None  # None: the task's become
    timeout: float | None = None
    unless: tuple[tuple[str, ...], ...] = ()

    def describe(self) -> str:
        from agent.transport.quote import join

        return f"run {join(self.argv)}"


@dataclass(frozen=True)
class NotifyHandler(Change):
    """Ask for handler ``name`` to run after the host's tasks (changes nothing itself)."""

    name: str
    alters_host: ClassVar[bool] = False

    def describe(self) -> str:
        return f"notify {self.name}"


def file_diff(path: str, before: bytes | None, after: bytes | None, *, secret: bool = False) -> str:
    """Unified diff of a file's content; secrets and binary content are never rendered."""
    if before == after:
        return ""
    if secret:
        return f"--- {path}\n+++ {path}\n(secret content not shown)\n"

    def lines(data: bytes | None) -> list[str] | None:
        if data is None:
            return []
        try:
            return data.decode("utf-8").splitlines(keepends=True)
        except UnicodeDecodeError:
            return None

    old, new = lines(before), lines(after)
    if old is None or new is None:
        return f"--- {path}\n+++ {path}\n(binary content differs)\n"
    text = "".join(
        difflib.unified_diff(
            old, new, fromfile=path if before is not None else "/dev/null", tofile=path
        )
    )
    return text if text.endswith("\n") or not text else text + "\n"
