"""The fleet executor end to end: a real redis-server (with a password), real ``origin-agent
worker`` processes and a lab of 100 origins. A celery rotation gives the local executor's recap,
summary and final state (hosts with faults from the lab's fault kit, a canary that fails and
stops the run); a worker SIGKILLed while it runs a task has its task redelivered and every host
ends rotated or reported, serving its own key, reloaded at most once more than needed; after
all of it, nothing in Redis is a private key or a planted secret."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.inventory import load
from agent.lab import Lab, LabHost, faults
from agent.state.store import Store
from tests.integration.conftest import PRIVATE_FIRST
from tests.integration.fleet_kit import (
    REDIS_PASSWORD,
    RedisServer,
    Workers,
    dump,
    redis_server,
    started_task,
    workers,
)
from tests.integration.reliability.fleet import (
    cli_argv,
    cli_env,
    read,
    site_name,
    site_state,
    spki_of_cert,
    spki_of_key,
    write_inventory,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOSTS = 100
TASK_TIMEOUT = 15.0
PLANTED = "planted-api-token-9f3e"  # an inventory var: only its digest may travel
_NOISE = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[\w+\] \d+#\d+: ")  # nginx's time and pid


@dataclass
class Fleet:
    lab: Lab
    inventory: str
    order: list[str]  # inventory order: the rotate plan's batches are 1, then 20s
    redis: RedisServer
    workers: Workers
    tmp: Path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("celery")
    lab = Lab.up(HOSTS, apache=20, first=PRIVATE_FIRST, dir=tmp / "lab")
    try:
        inventory = write_inventory(lab, tmp, cdn_api_token=PLANTED)
        order = [h.name for h in load([inventory]).select("all")]
        with redis_server(tmp / "redis") as server:
            with workers(server.url, tmp / "workers", 3, TASK_TIMEOUT) as group:
                yield Fleet(lab, inventory, order, server, group, tmp)
    finally:
        lab.down()


def rotate(fleet: Fleet, executor: str, state: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    """``origin-agent rotate --force --json``; (exit code, recap by host, summary line)."""
    argv = ["rotate", "-i", fleet.inventory, "--force", "--json", "--state-dir", state]
    if executor == "celery":
        argv += ["--executor", "celery", "--task-timeout", f"{TASK_TIMEOUT:g}"]
    env = cli_env(state, ORIGIN_AGENT_BROKER=fleet.redis.url)
    proc = subprocess.run(cli_argv(*argv, *extra), env=env, capture_output=True, timeout=300)
    err = proc.stderr.decode()
    assert REDIS_PASSWORD not in err and REDIS_PASSWORD not in proc.stdout.decode()
    events = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert events and events[-1]["event"] == "run_finished", err[-2000:]
    recap = {h["host"]: {**h, "error": _NOISE.sub("", h["error"])} for h in events[-1]["hosts"]}
    summary = next(line for line in err.splitlines() if line.startswith("rotation"))
    return proc.returncode, recap, summary


def issued(state: str) -> Counter[str]:
    with Store(state) as store:
        return Counter(c.host for c in store.certificates())


def current(host: LabHost) -> str | None:
    try:
        return os.readlink(host.path(f"/etc/ssl/origin-agent/{site_name(host)}/current"))
    except OSError:
        return None


def serves_own_key(host: LabHost) -> bool:
    root = f"/etc/ssl/origin-agent/{site_name(host)}/current"
    cert, key = read(host, f"{root}/cert.pem"), read(host, f"{root}/privkey.pem")
    found = site_state(host)
    return (
        bool(cert and key)
        and found.served == found.current_cert
        and (spki_of_cert(cert or b"") == spki_of_key(key or b""))
    )


def test_a_celery_rotation_with_faulty_hosts_equals_the_local_one(fleet: Fleet) -> None:
    lab = fleet.lab
    last = fleet.order[-19:]  # the last batch: every batch runs, then the run stops
    broken = [lab.host(last[3]), lab.host(last[-2])]  # one nginx, one apache2
    down = lab.host(last[8])
    for host in broken:
        faults.break_web_config(host)
    faults.stop_sshd(down)
    try:
        results = {}
        for executor in ("local", "celery"):
            state = str(fleet.tmp / f"state-{executor}")
            before = {h.name: current(h) for h in lab.hosts}
            code, recap, summary = rotate(fleet, executor, state)
            rotated = {h.name for h in lab.hosts if site_state(h).current != before[h.name]}
            results[executor] = (code, recap, summary, rotated, issued(state))
    finally:
        for host in broken:
            faults.fix_web_config(host)
        faults.start_sshd(down)
    local, celery = results["local"], results["celery"]
    assert local[0] == celery[0] == 1
    assert celery[1] == local[1]  # recap: counts, errors, unreachable, not run, per host
    assert (
        celery[2]
        == local[2]
        == "rotation: 97 rotated, 0 unchanged, 2 failed, 1 unreachable, 0 not run"
    )
    assert celery[3] == local[3] == set(fleet.order) - {h.name for h in [*broken, down]}
    assert celery[4] == local[4]  # the state store: one certificate per rotated host
    assert all_serve_own_key([h for h in lab.hosts if h not in (*broken, down)])


def test_a_failing_canary_stops_a_celery_run_as_it_stops_a_local_one(fleet: Fleet) -> None:
    canary = fleet.lab.host(fleet.order[0])
    faults.break_web_config(canary)
    try:
        results = {
            executor: rotate(fleet, executor, str(fleet.tmp / f"canary-{executor}"))
            for executor in ("local", "celery")
        }
    finally:
        faults.fix_web_config(canary)
    assert results["celery"] == results["local"]
    code, recap, summary = results["celery"]
    assert code == 1 and recap[canary.name]["failed"] == 1
    assert summary == "rotation: 0 rotated, 0 unchanged, 1 failed, 0 unreachable, 99 not run"


def all_serve_own_key(hosts: list[LabHost]) -> bool:
    """:func:`serves_own_key` for every host (handshakes in parallel: 100 hosts)."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        return all(pool.map(serves_own_key, hosts))


def versions_since(host: LabHost, stamp: str) -> int:
    """Certificate versions made on the host since ``stamp`` (YYYYmmddTHHMMSSZ): one per
    transaction that switched and reloaded (the newest three are kept)."""
    root = Path(host.path(f"/etc/ssl/origin-agent/{site_name(host)}"))
    return sum(
        1
        for p in root.iterdir()
        if p.is_dir() and not p.is_symlink() and p.name[:1].isdigit() and p.name >= stamp
    )


def test_a_worker_killed_mid_task_has_its_task_redelivered_and_every_host_ends_safe(
    fleet: Fleet,
) -> None:
    lab = fleet.lab
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 1))
    state = str(fleet.tmp / "state-kill")
    argv = ["rotate", "-i", fleet.inventory, "--force", "--json", "--state-dir", state]
    argv += ["--executor", "celery", "--task-timeout", f"{TASK_TIMEOUT:g}", "--hosts-per-task", "5"]
    env = cli_env(state, ORIGIN_AGENT_BROKER=fleet.redis.url)
    with subprocess.Popen(
        cli_argv(*argv), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as run:
        meta = started_task(fleet.redis, "-b2-")
        victim = fleet.workers.owner_of(int(meta["result"]["pid"]))
        assert victim is not None
        fleet.workers.kill(victim)
        out, err = run.communicate(timeout=300)
    events = [json.loads(line) for line in out.decode().splitlines()]
    recap = {h["host"]: h for h in events[-1]["hosts"]}
    assert run.returncode == 0, err.decode()[-2000:]
    assert sorted(recap) == sorted(fleet.order)
    assert all(h["changed"] == 1 and not h["failed"] for h in recap.values())
    made = {h.name: versions_since(h, stamp) for h in lab.hosts}
    assert all(1 <= n <= 2 for n in made.values()), made  # at most once more than needed
    assert all_serve_own_key(lab.hosts)
    # the killed worker's task was redelivered and finished by another worker
    final = json.loads(fleet.redis.client().get(f"celery-task-meta-{meta['task_id']}") or b"{}")
    assert final["status"] == "SUCCESS"
    assert final["worker"] != meta["result"]["hostname"]
    fleet.workers.start(1)  # three live workers again for what follows


def test_redis_holds_no_private_key_and_no_planted_secret_after_the_runs(fleet: Fleet) -> None:
    keys, data = dump(fleet.redis.client())
    assert keys > 10 and b"celery-task-meta-" in data and b"BEGIN CERTIFICATE" in data
    assert b"PRIVATE KEY" not in data
    assert PLANTED.encode() not in data
    assert REDIS_PASSWORD.encode() not in data
    lab_key = Path(fleet.lab.key_file).read_bytes()
    assert lab_key.strip().splitlines()[1] not in data
