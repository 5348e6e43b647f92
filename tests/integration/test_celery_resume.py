"""A fleet run interrupted on the controller (SIGKILL) is finished by ``--resume RUN_ID`` from
what the result backend holds, each host rotated once; a broker killed mid-run ends the run
with exit 6 and one line, and no origin is left half-switched."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.inventory import load
from agent.lab import Lab, LabHost
from tests.integration.conftest import PRIVATE_FIRST
from tests.integration.fleet_kit import (
    REDIS_PASSWORD,
    RedisServer,
    Workers,
    redis_server,
    started_task,
    workers,
)
from tests.integration.reliability.fleet import cli_argv, cli_env, write_inventory
from tests.integration.test_celery_executor import current, serves_own_key, versions_since

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOSTS = 20  # batches of 1, 4, 4, 4, 4, 3
TASK_TIMEOUT = 15.0


@dataclass
class Fleet:
    lab: Lab
    inventory: str
    order: list[str]
    redis: RedisServer
    workers: Workers
    tmp: Path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("resume")
    lab = Lab.up(HOSTS, apache=4, first=PRIVATE_FIRST, dir=tmp / "lab")
    try:
        inventory = write_inventory(lab, tmp)
        order = [h.name for h in load([inventory]).select("all")]
        with redis_server(tmp / "redis") as server:
            with workers(server.url, tmp / "workers", 2, TASK_TIMEOUT) as group:
                yield Fleet(lab, inventory, order, server, group, tmp)
    finally:
        lab.down()


def start(fleet: Fleet, state: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """A celery rotation as a child process, and its run id (its first line on stderr)."""
    argv = ["rotate", "-i", fleet.inventory, "--force", "--json", "--state-dir", state]
    argv += ["--executor", "celery", "--task-timeout", f"{TASK_TIMEOUT:g}"]
    argv += ["--hosts-per-task", "2", *extra]
    env = cli_env(state, ORIGIN_AGENT_BROKER=fleet.redis.url)
    proc = subprocess.Popen(
        cli_argv(*argv), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    first = proc.stderr.readline().decode()
    found = re.search(r"fleet run ([0-9a-f]{12}) ", first)
    assert found, first
    assert REDIS_PASSWORD not in first
    return proc, found.group(1)


def unswitched_or_consistent(host: LabHost) -> bool:
    """Never switched (no current version) or serving the current certificate with its key."""
    return current(host) is None or serves_own_key(host)


def test_a_controller_killed_mid_run_is_finished_by_resume(fleet: Fleet) -> None:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 1))
    state = str(fleet.tmp / "state-resume")
    proc, run_id = start(fleet, state)
    with proc:
        started_task(fleet.redis, "-b3-")
        proc.kill()  # SIGKILL: the controller dies mid-batch
        proc.wait(timeout=10)
    resumed, again = start(fleet, state, "--resume", run_id)
    assert again == run_id
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()[-2000:]
    events = [json.loads(line) for line in out.decode().splitlines()]
    recap = {h["host"]: h for h in events[-1]["hosts"]}
    assert sorted(recap) == sorted(fleet.order)
    assert all(h["changed"] == 1 and not h["failed"] for h in recap.values()), recap
    assert "rotation: 20 rotated, 0 unchanged, 0 failed, 0 unreachable, 0 not run" in err.decode()
    made = {h.name: versions_since(h, stamp) for h in fleet.lab.hosts}
    assert set(made.values()) == {1}, made  # no slice was sent twice
    assert all(serves_own_key(h) for h in fleet.lab.hosts)


def test_resume_of_an_unknown_run_is_one_line_and_runs_nothing(fleet: Fleet) -> None:
    state = str(fleet.tmp / "state-unknown")
    argv = ["rotate", "-i", fleet.inventory, "--state-dir", state, "--executor", "celery"]
    env = cli_env(state, ORIGIN_AGENT_BROKER=fleet.redis.url)
    proc = subprocess.run(
        cli_argv(*argv, "--resume", "0123456789ab"), env=env, capture_output=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [
        "origin-agent: --resume: the broker holds no run 0123456789ab; runs are kept 7 days"
    ]


def test_losing_the_broker_mid_run_exits_6_with_one_line_and_nothing_half_switched(
    fleet: Fleet,
) -> None:
    state = str(fleet.tmp / "state-lost")
    proc, run_id = start(fleet, state)
    with proc:
        started_task(fleet.redis, "-b2-")
        fleet.redis.kill()
        out, err = proc.communicate(timeout=120)
    lines = err.decode().splitlines()
    assert proc.returncode == 6, lines
    assert len(lines) == 1 and lines[0].startswith(
        f"origin-agent: fleet run {run_id}: broker redis://:***@127.0.0.1:"
    ), lines
    assert f"resume with --resume {run_id}" in lines[0]
    assert REDIS_PASSWORD not in err.decode() + out.decode()
    time.sleep(TASK_TIMEOUT / 3)  # tasks already running on the workers finish on their own
    assert all(unswitched_or_consistent(h) for h in fleet.lab.hosts)
    for worker in fleet.workers.procs:  # no broker to say goodbye to: stopped by PID now
        fleet.workers.kill(worker)


def test_lab_up_with_workers_runs_a_celery_rotation_and_lab_down_stops_them(
    tmp_path: Path,
) -> None:
    lab_dir = tmp_path / "lab"
    env = cli_env(str(tmp_path / "state"))
    env.pop("ORIGIN_AGENT_BROKER", None)
    first = str(PRIVATE_FIRST + HOSTS)  # beside the module's lab
    up = subprocess.run(
        cli_argv("lab", "--dir", str(lab_dir), "up", "2", "--first", first, "--workers", "1"),
        env=env,
        capture_output=True,
        timeout=120,
    )
    try:
        assert up.returncode == 0, up.stderr.decode()[-2000:]
        assert "redis://:***@127.0.0.1:" in up.stdout.decode()
        broker = (lab_dir / "broker.env").read_text().strip().split("=", 1)[1]
        assert broker.encode() not in up.stdout + up.stderr
        assert (lab_dir / "broker.env").stat().st_mode & 0o777 == 0o600
        started = json.loads((lab_dir / "fleet.json").read_text())
        assert [s["name"] for s in started] == ["redis-server", "worker0"]
        rotate = subprocess.run(
            cli_argv("rotate", "-i", str(lab_dir / "inventory.yml"), "--executor", "celery"),
            env={**env, "ORIGIN_AGENT_BROKER": broker},
            capture_output=True,
            timeout=120,
        )
        assert rotate.returncode == 0, rotate.stderr.decode()[-2000:]
        assert "rotation: 2 rotated" in rotate.stdout.decode()
    finally:
        down = subprocess.run(
            cli_argv("lab", "--dir", str(lab_dir), "down"),
            env=env,
            capture_output=True,
            timeout=120,
        )
    assert down.returncode == 0, down.stderr.decode()
    assert not any(alive(s["pid"]) for s in started)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for this test process, the lab's subreaper, is reaped)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_rediss_broker_runs_a_fleet_and_an_unverified_server_is_refused(
    tmp_path: Path,
) -> None:
    inventory = tmp_path / "inv.yml"
    inventory.write_text(
        "all:\n  vars: {ansible_connection: local}\n"
        f"  hosts:\n    a: {{out: {tmp_path}/a}}\n    b: {{out: {tmp_path}/b}}\n"
    )
    plan = tmp_path / "plan.yml"
    plan.write_text(
        '- hosts: all\n  tasks:\n    - copy: {dest: "{{ out }}", content: "{{ inventory_hostname }}"}\n'
    )
    state = str(tmp_path / "state")
    argv = ["run", str(plan), "-i", str(inventory), "--executor", "celery", "--json"]
    with redis_server(tmp_path / "redis", tls=True) as server:
        with workers(server.url, tmp_path / "workers", 1, TASK_TIMEOUT):
            env = cli_env(state, ORIGIN_AGENT_BROKER=server.url)
            done = subprocess.run(cli_argv(*argv), env=env, capture_output=True, timeout=120)
            assert done.returncode == 0, done.stderr.decode()[-2000:]
            assert (tmp_path / "a").read_text() == "a" and (tmp_path / "b").read_text() == "b"
            plain = server.url.split("?", 1)[0]  # no CA given: the server is not trusted
            env = cli_env(state, ORIGIN_AGENT_BROKER=plain)
            refused = subprocess.run(cli_argv(*argv), env=env, capture_output=True, timeout=120)
    lines = refused.stderr.decode().splitlines()
    assert refused.returncode == 6 and len(lines) == 1, lines
    assert "certificate verify failed" in lines[0] and "nothing was run" in lines[0]
    assert REDIS_PASSWORD not in refused.stderr.decode() + done.stderr.decode()
