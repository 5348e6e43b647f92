"""The :class:`Connection` interface every transport implements.

A connection runs argv lists (never shell strings built by callers), reads files, writes files
atomically with their final mode from the first byte, and stats paths. Implementations:
``agent.transport.ssh`` (paramiko) and ``agent.transport.local``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Result:
    """Outcome of one command."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class FileStat:
    """What ``stat`` says about a path; ``exists`` False means nothing is there."""

    path: str
    exists: bool
    kind: str = ""  # "file", "dir", "link", "other"
    mode: int = 0  # permission bits only, e.g. 0o600
    uid: int = -1
    gid: int = -1
    size: int = 0
    link_target: str = ""


@dataclass(frozen=True)
class Owner:
    """Owner for a written file; ``None`` fields leave the default (the connecting user)."""

    user: str | None = None
    group: str | None = None


@dataclass
class Counters:
    """Round trips made on a connection after it was opened (for the benchmark)."""

    commands: int = 0
    file_ops: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def round_trips(self) -> int:
        return self.commands + self.file_ops


@runtime_checkable
class Connection(Protocol):
    """One open connection to one host."""

    host: str
    counters: Counters

    def run(
        self,
        argv: list[str] | tuple[str, ...],
        *,
        stdin: bytes | None = None,
        become: bool = False,
        timeout: float | None = None,
        check: bool = False,
    ) -> Result:
        """Run ``argv`` on the host.

        Raises:
            CommandError: when ``check`` is true and the command exits non-zero.
            ConnectError: when the connection is lost.
        """
        ...

    def read(self, path: str) -> bytes | None:
        """Return the file's bytes, or ``None`` if it does not exist."""
        ...

    def write(
        self, path: str, data: bytes, *, mode: int = 0o644, owner: Owner | None = None
    ) -> None:
        """Write ``data`` atomically: a temporary file created with ``mode`` in the same
        directory, then renamed over ``path``. Never readable by others when mode forbids it.
        """
        ...

    def stat(self, path: str) -> FileStat:
        """Describe ``path`` without following a final symlink."""
        ...

    def close(self) -> None: ...
