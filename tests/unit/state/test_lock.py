"""The controller lock, exercised by real processes (a holder started with subprocess)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli import main
from agent.errors import RunLockedError
from agent.state.lock import Holder, RunLock, held, is_alive, lock_path, parse_holder, proc_start

HOLDER = """
import os, sys, time
from agent.state.lock import held
fork = sys.argv[3] == "fork"
with held([sys.argv[1]], state_dir=sys.argv[2]):
    child = os.fork() if fork else -1
    if child == 0:  # a child that keeps the descriptor, as a stray process would
        time.sleep(60)
        os._exit(0)
    print("locked", child, flush=True)
    time.sleep(float(sys.argv[4]))
"""


def _start_holder(
    inv: str, state: Path, *, hold: float = 30, fork: bool = False
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, inv, str(state), "fork" if fork else "-", str(hold)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    word, child = proc.stdout.readline().split()
    assert word == "locked"
    proc.stray = int(child)  # type: ignore[attr-defined]
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "state"


def test_second_run_is_refused_naming_the_holder(state: Path) -> None:
    holder = _start_holder("inv.yml", state)
    try:
        with pytest.raises(RunLockedError) as caught:
            with held(["inv.yml"], state_dir=str(state)):
                pass
        text = str(caught.value)
        assert caught.value.exit_code == 5
        assert f"pid {holder.pid}" in text and "since 20" in text and "\n" not in text
        assert text.startswith("inv.yml: another run holds the lock")
    finally:
        _stop(holder)


def test_second_run_waits_for_the_holder_to_finish(state: Path) -> None:
    holder = _start_holder("inv.yml", state, hold=1.0)
    try:
        start = time.monotonic()
        with held(["inv.yml"], state_dir=str(state), wait=10):
            waited = time.monotonic() - start
        assert 0.3 < waited < 5
    finally:
        _stop(holder)


def test_wait_is_bounded(state: Path) -> None:
    holder = _start_holder("inv.yml", state)
    try:
        start = time.monotonic()
        with pytest.raises(RunLockedError, match="after waiting 0.6 s"):
            with held(["inv.yml"], state_dir=str(state), wait=0.6):
                pass
        assert time.monotonic() - start < 2
    finally:
        _stop(holder)


def test_other_inventory_or_state_store_is_not_locked(state: Path, tmp_path: Path) -> None:
    holder = _start_holder("inv.yml", state)
    try:
        with held(["other.yml"], state_dir=str(state)):
            pass
        with held(["inv.yml"], state_dir=str(tmp_path / "state2")):
            pass
    finally:
        _stop(holder)


def test_lock_of_a_killed_holder_is_taken(state: Path) -> None:
    holder = _start_holder("inv.yml", state)
    _stop(holder)
    with held(["inv.yml"], state_dir=str(state)) as lock:
        record = parse_holder(lock.path.read_text())
        assert record is not None and record.pid == os.getpid()
    assert lock.path.read_text() == ""  # emptied on release


def test_stale_lock_kept_by_a_stray_child_of_a_dead_holder_is_taken_over(state: Path) -> None:
    holder = _start_holder("inv.yml", state, fork=True)
    path = lock_path(state, ["inv.yml"])
    try:
        _stop(holder)
        # the stray child still holds the flock on the old file
        with pytest.raises(BlockingIOError):
            import fcntl

            fd = os.open(path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(fd)
        old_inode = path.stat().st_ino
        start = time.monotonic()
        with held(["inv.yml"], state_dir=str(state)) as lock:
            assert time.monotonic() - start < 2
            assert lock.path.stat().st_ino != old_inode
    finally:
        os.kill(holder.stray, signal.SIGKILL)  # type: ignore[attr-defined]


def test_a_reused_pid_is_not_the_holder() -> None:
    mine = proc_start(os.getpid())
    assert mine
    assert is_alive(Holder(os.getpid(), mine, "2026-01-01T00:00:00+00:00", "x"))
    assert not is_alive(Holder(os.getpid(), str(int(mine) + 1), "2026-01-01T00:00:00+00:00", "x"))


def test_lock_file_is_private(state: Path) -> None:
    with held(["inv.yml"], state_dir=str(state)) as lock:
        assert lock.path.stat().st_mode & 0o777 == 0o600
        assert lock.path.parent.stat().st_mode & 0o777 == 0o700


def test_same_process_second_lock_is_refused(state: Path) -> None:
    path = lock_path(state, ["a"])
    state.mkdir(mode=0o700)
    first = RunLock(path, what="a")
    first.acquire()
    try:
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            RunLock(path, what="a").acquire()
    finally:
        first.release()


def test_cli_run_exits_5_with_one_line_naming_the_holder(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts: {}\n")
    holder = _start_holder(str(inv), state)
    try:
        code = main(["rotate", "-i", str(inv), "--state-dir", str(state)])
        err = capsys.readouterr().err
        assert code == 5
        assert err.count("\n") == 1 and f"pid {holder.pid}" in err
    finally:
        _stop(holder)
