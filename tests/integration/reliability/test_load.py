"""Rotations of a lab (2 nginx + 2 apache) under continuous HTTPS load on loopback: requests on
fresh connections never fail; keep-alive failures (a graceful reload may close an idle
connection between two requests) are counted and reported."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from agent.lab import Lab
from tests.integration.reliability import figures
from tests.integration.reliability.fleet import (
    cli_argv,
    cli_env,
    site_name,
    site_state,
    wait_served,
)
from tests.integration.reliability.loadgen import Load, Target

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROTATIONS = 2  # forced rotations of the whole lab while the load runs (4-15 s each)
BOUND = 60.0  # seconds: no rotation starts after this


def test_rotating_under_load_drops_no_request_on_fresh_connections(
    make_lab: object, tmp_path: Path, state_dir: str
) -> None:
    lab: Lab = make_lab(4, apache=2)  # type: ignore[operator]
    env = cli_env(state_dir)
    argv = cli_argv("rotate", "-i", lab.inventory_path)
    first = subprocess.run(argv, env=env, capture_output=True, timeout=120)
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    targets = [Target(h.address, site_name(h)) for h in lab.hosts]
    rotations: list[int] = []
    before = {h.name: site_state(h).current for h in lab.hosts}
    started = time.monotonic()
    with Load(targets) as load:
        time.sleep(1.0)
        while len(rotations) < ROTATIONS and time.monotonic() - started < BOUND:
            proc = subprocess.run([*argv, "--force"], env=env, capture_output=True, timeout=120)
            rotations.append(proc.returncode)
            time.sleep(0.3)
        time.sleep(1.0)
    elapsed = time.monotonic() - started
    fresh, keep = load.fresh, load.keepalive
    for host in lab.hosts:
        state = site_state(host)
        assert state.current != before[host.name]
        assert wait_served(host, state.current_cert) == state.current_cert
    figures.record(
        f"load (4 hosts, 2 nginx + 2 apache, {len(rotations)} rotations in {elapsed:.0f}s, "
        "loopback)",
        f"fresh connections: {fresh.sent} requests, {fresh.failed} failed",
        f"keep-alive:        {keep.sent} requests, {keep.failed} failed"
        + (
            f" ({', '.join(f'{n}x {e}' for e, n in keep.errors.most_common(2))})"
            if keep.failed
            else ""
        ),
    )
    assert rotations and all(code == 0 for code in rotations), rotations
    assert fresh.sent > 200 and keep.sent > 200
    assert fresh.failed == 0, fresh.errors.most_common(5)
