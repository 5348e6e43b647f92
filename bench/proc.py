"""Run one tool as a subprocess and measure it: wall time, the peak RSS of its process tree
(sampled sum over every descendant), and the kernel's high-water mark of the largest single
process (``ru_maxrss`` from ``wait4``)."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Measured:
    argv: tuple[str, ...]
    exit_code: int
    wall: float  # seconds
    maxrss_kib: int  # largest single process of the tree (kernel high-water mark)
    tree_rss_kib: int  # largest sampled sum of RSS over the whole tree
    tree_pss_kib: int  # largest sampled sum of PSS (shared pages split between sharers)
    tree_procs: int  # most processes seen at once
    cpu: float  # user + system CPU seconds of the process and its reaped descendants
    stdout: str
    stderr: str

    @property
    def peak_mib(self) -> float:
        """Peak RSS: the tree's sampled sum, or its largest process's high-water mark."""
        return max(self.maxrss_kib, self.tree_rss_kib) / 1024

    @property
    def peak_pss_mib(self) -> float:
        """Peak PSS of the tree (fairer for forked workers sharing pages)."""
        return self.tree_pss_kib / 1024


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                out += [
                    int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                ]
            except OSError:
                continue
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and every live descendant."""
    seen = [pid]
    i = 0
    while i < len(seen) and i < 10_000:
        seen += [c for c in _children(seen[i]) if c not in seen]
        i += 1
    return seen


def _rss_kib(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE // 1024
    except (OSError, ValueError, IndexError):
        return 0


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float = 900.0,
    period: float = 0.02,
) -> Measured:
    """Run ``argv`` to completion (killed after ``timeout``) and measure it."""
    start = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its whole tree can be stopped if the benchmark is interrupted
    )
    peak = [0, 0, 0]
    done = threading.Event()
    out: dict[str, bytes] = {}
    threads = [
        threading.Thread(target=_sample, args=(proc.pid, peak, done, period), daemon=True),
        threading.Thread(target=_drain, args=(out, "out", proc.stdout), daemon=True),
        threading.Thread(target=_drain, args=(out, "err", proc.stderr), daemon=True),
    ]
    for t in threads:
        t.start()
    status, usage = _wait(proc, start + timeout)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    for t in threads:
        t.join(timeout=10)
    return Measured(
        argv=tuple(argv),
        exit_code=proc.returncode,
        wall=wall,
        maxrss_kib=usage.ru_maxrss,
        tree_rss_kib=peak[0],
        tree_pss_kib=peak[2],
        tree_procs=peak[1],
        cpu=usage.ru_utime + usage.ru_stime,
        stdout=out.get("out", b"").decode(errors="replace"),
        stderr=out.get("err", b"").decode(errors="replace"),
    )


def _sample(pid: int, peak: list[int], done: threading.Event, period: float) -> None:
    """Until ``done``: keep in ``peak`` the largest RSS sum (KiB), process count and PSS sum
    (KiB) seen over the process tree of ``pid``."""
    while not done.is_set():
        pids = tree(pid)
        total = sum(_rss_kib(p) for p in pids)
        peak[0] = max(peak[0], total)
        peak[1] = max(peak[1], len(pids))
        peak[2] = max(peak[2], sum(_pss_kib(p) for p in pids))
        done.wait(period if len(pids) < 20 else period * 5)


def _drain(out: dict[str, bytes], name: str, stream: object) -> None:
    out[name] = stream.read()  # type: ignore[attr-defined]


def _wait(proc: subprocess.Popen[bytes], deadline: float) -> tuple[int, resource.struct_rusage]:
    """Wait for ``proc`` (killed after ``deadline``); its wait status and resource usage.
    Interrupted, the process's whole group is killed first."""
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                return status, usage
            if time.monotonic() > deadline:
                proc.kill()
            time.sleep(0.005)
    except BaseException:  # interrupted: stop the tool's whole process group, then go on up
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
