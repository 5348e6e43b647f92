"""A frozen host (TCP opens, no SSH banner ever comes) costs at most the connect timeout and
never holds up the other hosts."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from agent.lab import Lab, faults
from tests.integration.reliability import figures
from tests.integration.reliability.fleet import cli_argv, cli_env, write_inventory, write_plan

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONNECT_TIMEOUT = 3.0


def timed_run(argv: list[str], env: dict[str, str]) -> tuple[float, int, list[dict[str, object]]]:
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, timeout=120)
    elapsed = time.monotonic() - started
    return elapsed, proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()]


def test_a_frozen_host_costs_at_most_the_connect_timeout_and_stalls_no_one(
    make_lab: object, tmp_path: Path, state_dir: str
) -> None:
    lab: Lab = make_lab(3, apache=1)  # type: ignore[operator]
    inv = write_inventory(lab, tmp_path, ansible_timeout=CONNECT_TIMEOUT)
    plan = write_plan(tmp_path)
    env = cli_env(state_dir)
    argv = cli_argv("run", plan, "-i", inv, "-e", "force=true", "--json")
    baseline, code, _ = timed_run(argv, env)
    assert code == 0
    frozen = lab.hosts[1]
    faults.get("sshd-frozen").inject(frozen)
    try:
        elapsed, code, events = timed_run(argv, env)
    finally:
        faults.get("sshd-frozen").undo(frozen)
    assert code == 3  # some host unreachable, none failed
    recap = {h["host"]: h for h in events[-1]["hosts"]}  # type: ignore[attr-defined]
    assert recap[frozen.name]["unreachable"]
    assert f"within {CONNECT_TIMEOUT:g}s" in recap[frozen.name]["error"]
    others = [h.name for h in lab.hosts if h is not frozen]
    assert all(recap[n]["changed"] == 1 and not recap[n]["failed"] for n in others)
    # the others finished before the frozen host's timeout came: nobody waited for it
    order = [e.get("host") for e in events if e["event"] in ("task_done", "host_unreachable")]
    assert order.index(frozen.name) == len(order) - 1, order
    extra = elapsed - baseline
    figures.record(
        "timeouts (sshd frozen on 1 of 3 hosts, connect timeout 3s)",
        f"run without fault {baseline:.2f}s, with the frozen host {elapsed:.2f}s "
        f"(+{extra:.2f}s); the other 2 hosts rotated before the timeout fired",
    )
    assert extra <= CONNECT_TIMEOUT + 1.0, f"the frozen host cost {extra:.2f}s"
