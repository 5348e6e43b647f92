"""Running unattended, on a real lab: one run at a time (two real processes), metrics that
match `status --json`, and alerts to a real webhook receiver on 127.0.0.5."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.cli import main
from agent.lab import Lab, LabHost, faults
from agent.pki.probe import probe
from agent.state.lock import lock_path, parse_holder
from tests.receiver import receiver

pytestmark = pytest.mark.integration

RECEIVER = "127.0.0.5"


def _served(host: LabHost) -> str:
    result = probe(host.address, 443, f"{host.name}.lab.test", timeout=5)
    return hashlib.sha256(result.leaf_der).hexdigest()


def _cli(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _metrics(path: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _status_json(
    capsys: pytest.CaptureFixture[str], inv: str, state: Path
) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["status", "-i", inv, "--state-dir", str(state), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["rows"]  # type: ignore[no-any-return]


def test_metrics_match_status_and_a_webhook_hears_only_of_a_failed_run(
    make_lab: Callable[..., Lab], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(3, apache=1)
    inv, state, prom = lab.inventory_path, tmp_path / "state", tmp_path / "oa.prom"
    common = ["-i", inv, "--state-dir", str(state), "--force", "--prometheus", str(prom)]
    assert main(["bootstrap", "-i", inv, "--state-dir", str(state)]) == 0
    with receiver(RECEIVER) as rx:
        assert main(["rotate", *common, "--notify", rx.url, "--fail-within", "1"]) == 0
        assert rx.bodies == []  # a clean run says nothing
        got = _metrics(prom)
        rows = _status_json(capsys, inv, state)
        assert len(rows) == 3
        for row in rows:
            hn = {("host", str(row["host"])), ("name", str(row["name"]))}
            expiry = datetime.fromisoformat(str(row["not_after"])).timestamp()
            assert (
                got[("origin_agent_certificate_expiry_timestamp_seconds", frozenset(hn))] == expiry
            )
            assert got[("origin_agent_ssl_mode", frozenset(hn | {("mode", str(row["mode"]))}))] == 1
            assert row["mode"] == "strict"
            rotated = got[
                ("origin_agent_certificate_last_rotation_timestamp_seconds", frozenset(hn))
            ]
            assert time.time() - 120 < rotated <= time.time()
        assert got[("origin_agent_rotate_hosts", frozenset({("result", "rotated")}))] == 3
        assert got[("origin_agent_rotate_exit_code", frozenset())] == 0

        broken = lab.hosts[-1]
        faults.get("web-config-broken").inject(broken)
        try:
            assert main(["rotate", *common, "--notify", rx.url]) == 1
            assert len(rx.bodies) == 1
            body = rx.bodies[0]
            problems = body["origin_agent"]["problems"]
            assert [(p["host"], p["kind"]) for p in problems] == [(broken.name, "failed")]
            assert f"- {broken.name}: failed:" in body["text"]
            got = _metrics(prom)
            assert got[("origin_agent_rotate_hosts", frozenset({("result", "failed")}))] == 1
            assert got[("origin_agent_rotate_exit_code", frozenset())] == 1

            # status republishes the last run from the state store; its file matches rotate's
            assert (
                main(["status", "-i", inv, "--state-dir", str(state), "--prometheus", str(prom)])
                == 0
            )
            assert _metrics(prom)[("origin_agent_rotate_exit_code", frozenset())] == 1

            with socket.socket() as sock:
                sock.bind((RECEIVER, 0))
                dead = f"http://{RECEIVER}:{sock.getsockname()[1]}/hook"
            assert main(["rotate", *common, "--notify", dead]) == 1  # same code as without it
            err = capsys.readouterr().err
            assert f"http://{RECEIVER}:" in err and "notification not delivered" in err
        finally:
            faults.get("web-config-broken").undo(broken)
        assert len(rx.bodies) == 1


def _holding(proc: subprocess.Popen[str], path: Path) -> None:
    """Wait until ``proc`` holds the lock at ``path``, then pause it there (SIGSTOP), so that a
    second run certainly overlaps it however fast the machine is."""
    deadline = time.monotonic() + 20
    while parse_holder(path.read_text() if path.exists() else "") is None:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGSTOP)


def test_two_rotations_at_once_one_rotates_the_other_exits_5_naming_it(
    make_lab: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = make_lab(3)
    inv, state = lab.inventory_path, str(tmp_path / "state")
    assert main(["bootstrap", "-i", inv, "--state-dir", state]) == 0
    before = {h.name: _served(h) for h in lab.hosts}
    path = lock_path(Path(state), [inv])
    first = _cli("rotate", "-i", inv, "--state-dir", state, "--force")
    _holding(first, path)
    try:
        second = _cli("rotate", "-i", inv, "--state-dir", state, "--force")
        _, err2 = second.communicate(timeout=60)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err1 = first.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert second.returncode == 5
    assert err2.count("\n") == 1 and f"pid {first.pid}" in err2 and "since 20" in err2
    assert err2.startswith(f"origin-agent: {inv}: another run holds the lock: ")
    after = {h.name: _served(h) for h in lab.hosts}
    assert all(after[n] != before[n] for n in before)  # rotated once, by the first

    # with --wait the second run waits for the first, then rotates after it
    first = _cli("rotate", "-i", inv, "--state-dir", state, "--force")
    _holding(first, path)
    try:
        second = _cli("rotate", "-i", inv, "--state-dir", state, "--force", "--wait", "120")
        time.sleep(2)
        assert second.poll() is None  # waiting, not refused
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
    for proc in (first, second):
        proc.communicate()
    again = {h.name: _served(h) for h in lab.hosts}
    assert all(again[n] != after[n] for n in before)


def test_a_killed_rotation_leaves_a_lock_the_next_run_takes(
    make_lab: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = make_lab(2)
    inv, state = lab.inventory_path, str(tmp_path / "state")
    assert main(["bootstrap", "-i", inv, "--state-dir", state]) == 0
    holder = _cli("rotate", "-i", inv, "--state-dir", state, "--force")
    path = lock_path(Path(state), [inv])
    deadline = time.monotonic() + 20
    while parse_holder(path.read_text() if path.exists() else "") is None:
        assert time.monotonic() < deadline and holder.poll() is None
        time.sleep(0.02)
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate()
    assert parse_holder(path.read_text()) is not None  # its record is still there
    again = _cli("rotate", "-i", inv, "--state-dir", state, "--force")
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
