"""The lab's processes: who they are, how they stop, and who reaps them.

The lab runs as the subreaper of the daemons its hosts start (on machines whose PID 1 does not
reap), so a daemon that dies between runs is a zombie of this process until someone waits for
it. The reaper thread waits for exactly the PIDs named in the hosts' pid files, never for
another child of this process. Processes are told apart by start time and mount namespace, and
stopped by PID only.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from agent.errors import LabError

PidFiles = Callable[[], Iterable[str]]

_sources: dict[int, PidFiles] = {}
_lock = threading.Lock()
_started = False


def track(owner: object, pid_files: PidFiles) -> None:
    """Reap the daemons whose pid files ``pid_files()`` names (machine-side paths) until
    :func:`untrack`; the reaper thread starts on first use."""
    global _started
    with _lock:
        _sources[id(owner)] = pid_files
        if not _started:
            _started = True
            threading.Thread(target=_reap_daemons, name="lab-reaper", daemon=True).start()


def untrack(owner: object) -> None:
    """Stop reaping for ``owner`` (PIDs already known are still waited for)."""
    with _lock:
        _sources.pop(id(owner), None)


def _read_pid(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _reap_daemons() -> None:
    """Reap the lab's daemons that die while this process is their subreaper (e.g. Apache
    exiting on a bad graceful restart), so a stale pid file never names a zombie: the agent's
    `apache2ctl start` must see a dead server as dead."""
    known: set[int] = set()
    while True:
        with _lock:
            sources = list(_sources.values())
        for pid_files in sources:
            for path in pid_files():
                pid = _read_pid(path)
                if pid is not None:
                    known.add(pid)
        for pid in list(known):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                if not Path(f"/proc/{pid}").exists():
                    known.discard(pid)
                continue
            if done:
                known.discard(pid)
        time.sleep(0.05)


def become_subreaper() -> None:
    """Adopt the daemons our hosts start, so ``down`` can reap them (no zombies left behind
    on machines whose PID 1 does not reap)."""
    import ctypes

    pr_set_child_subreaper = 36
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (tells a PID's reuse apart)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def mnt_ns(pid: int) -> int | None:
    """The inode of the process's mount namespace."""
    try:
        return os.stat(f"/proc/{pid}/ns/mnt").st_ino
    except OSError:
        return None


def pids_in(namespace: int) -> list[int]:
    """Every process living in the mount namespace ``namespace``."""
    found: list[int] = []
    if not namespace:
        return found
    for entry in os.listdir("/proc"):
        if entry.isdigit() and mnt_ns(int(entry)) == namespace:
            found.append(int(entry))
    return sorted(found)


def pid_in(path: str, namespace: int) -> int | None:
    """The PID in the pid file ``path`` if that process lives in ``namespace``."""
    pid = _read_pid(path)
    return pid if pid is not None and mnt_ns(pid) == namespace else None


def terminate(pids: Sequence[int], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL what is left after ``timeout``; reap our own children."""
    live = list(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in live:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while live and time.monotonic() < deadline:
            for pid in list(live):
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                    live.remove(pid)
            if live:
                time.sleep(0.02)
        if not live:
            return


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_port(address: str, port: int, timeout: float, name: str) -> None:
    """Wait until something accepts connections on ``address:port``.

    Raises:
        LabError: nothing answered within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise LabError(f"nothing answers on {address}:{port}", where=name) from None
            time.sleep(0.02)
