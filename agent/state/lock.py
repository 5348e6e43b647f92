"""One run at a time per inventory and state store, on the controller.

The lock is a file in the state directory, ``locks/run-<key>.lock`` (the key hashes the state
directory and the inventory sources), held with flock(2) for the whole run. The holder writes
its pid, the pid's start time (from /proc, which tells a reused pid apart) and when and what it
started, so a second run can name it. The kernel drops a flock when the holder's last
descriptor closes, so a killed holder's lock frees itself. If the file is still locked but the
recorded holder is dead (a process it forked kept the descriptor), and the record stays the same
for one more poll (a new holder rewrites it at once), the file is unlinked and a fresh one
locked: the stale lock is taken over. The holder empties the file when it lets go.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.errors import RunLockedError, StateError
from agent.state.paths import default_state_dir, ensure_state_dir

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: pid, the pid's start time in clock ticks since boot ("" if unknown),
    when the run started (ISO 8601 UTC) and its command line."""

    pid: int
    proc_start: str
    started_at: str
    command: str

    def describe(self) -> str:
        return f"pid {self.pid} ({self.command}) since {self.started_at}"


def proc_start(pid: int) -> str:
    """Field 22 of ``/proc/PID/stat`` (start time in ticks since boot), "" if unreadable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = text.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def is_alive(holder: Holder) -> bool:
    """The recorded process still runs (and is the same process, not a reused pid)."""
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    current = proc_start(holder.pid)
    return not (holder.proc_start and current and current != holder.proc_start)


def parse_holder(text: str) -> Holder | None:
    """The holder record a lock file holds, or None when it is empty or not ours."""
    try:
        data = json.loads(text)
        return Holder(
            pid=int(data["pid"]),
            proc_start=str(data.get("proc_start", "")),
            started_at=str(data["started_at"]),
            command=str(data.get("command", "")),
        )
    except (ValueError, KeyError, TypeError):
        return None


def lock_path(state_dir: Path, inventories: Sequence[str]) -> Path:
    """The lock file of one state directory and set of inventory sources."""
    sources = sorted(os.path.realpath(s) if os.path.exists(s) else s for s in inventories)
    key = "\0".join([os.path.realpath(state_dir), *sources])
    return state_dir / "locks" / f"run-{hashlib.sha256(key.encode()).hexdigest()[:16]}.lock"


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 4096).decode("utf-8", "replace")


def _same_file(path: Path, fd: int) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


class RunLock:
    """An exclusive lock on ``path`` named ``what`` in messages (the inventory)."""

    def __init__(
        self, path: Path, *, what: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path, self.what, self._clock = path, what, clock
        self._fd: int | None = None

    def acquire(self, wait: float = 0.0) -> None:
        """Take the lock, waiting up to ``wait`` seconds for the holder to finish.

        Raises:
            RunLockedError: still held after ``wait`` seconds; the message names the holder.
            StateError: the lock file cannot be created.
        """
        deadline = self._clock() + max(0.0, wait)
        suspect: str | None = None  # a dead holder's record seen on the previous try
        for _ in range(int(max(0.0, wait) / POLL_SECONDS) + 50):
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = _read(fd)
                holder = parse_holder(text)
                if holder is not None and not is_alive(holder):
                    if suspect == text and _same_file(self.path, fd):
                        log.info("taking over the stale lock %s of %s", self.path, holder.pid)
                        self.path.unlink(missing_ok=True)
                        os.close(fd)
                        suspect = None
                        continue
                    suspect = text
                else:
                    suspect = None
                os.close(fd)
                if self._clock() >= deadline and suspect is None:
                    raise self._busy(holder, wait) from None
                time.sleep(POLL_SECONDS)
                continue
            if not _same_file(self.path, fd):  # unlinked by a takeover after we opened it
                os.close(fd)
                continue
            self._fd = fd
            self._write_holder()
            return
        raise self._busy(None, wait)

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(mode=0o700, exist_ok=True)
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
            return os.open(self.path, flags, 0o600)
        except OSError as err:
            raise StateError(
                f"cannot create lock file: {err.strerror}", where=str(self.path)
            ) from err

    def _busy(self, holder: Holder | None, wait: float) -> RunLockedError:
        who = holder.describe() if holder else "a process that has not said who it is"
        waited = f" after waiting {wait:g} s" if wait > 0 else ""
        return RunLockedError(
            f"another run holds the lock{waited}: {who}",
            where=self.what,
            hint="let it finish, or give --wait SECONDS",
        )

    def _write_holder(self) -> None:
        assert self._fd is not None
        pid = os.getpid()
        holder = Holder(
            pid=pid,
            proc_start=proc_start(pid),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            command=" ".join(["origin-agent", *sys.argv[1:]])[:200],
        )
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(asdict(holder)).encode(), 0)

    def release(self) -> None:
        """Let go (emptying the record first, so nobody reads a finished holder)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            os.close(self._fd)
            self._fd = None


@contextmanager
def held(
    inventories: Sequence[str], *, state_dir: str | None, wait: float = 0.0
) -> Iterator[RunLock]:
    """Hold the controller lock of ``inventories`` and the state store for a block.

    Raises:
        RunLockedError: see :meth:`RunLock.acquire`.
        StateError: the state directory or lock file cannot be made.
    """
    directory = ensure_state_dir(Path(state_dir) if state_dir else default_state_dir())
    lock = RunLock(lock_path(directory, inventories), what=", ".join(inventories) or "inventory")
    lock.acquire(wait)
    try:
        yield lock
    finally:
        lock.release()
