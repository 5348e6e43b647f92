"""Loading is linear in hosts: joining a group is a set lookup, not a list scan."""

from __future__ import annotations

import time
from pathlib import Path

from agent.inventory import load


def test_forty_thousand_hosts_load_in_seconds_not_minutes(tmp_path: Path) -> None:
    inv = tmp_path / "big.ini"
    inv.write_text("u[1:10000]\n[web]\nw[1:30000]\n[web:children]\nedge\n[edge]\nu[1:5]\n")
    # this process's CPU time, not the wall clock: other work on a loaded machine does not count
    started = time.process_time()
    inventory = load([str(inv)])
    elapsed = time.process_time() - started
    assert len(inventory.hosts) == 40_000
    assert inventory.groups["ungrouped"].hosts[:2] == ["u6", "u7"]  # u1-u5 joined a group
    assert len(inventory.groups["ungrouped"].hosts) == 9_995
    assert elapsed < 6, f"{elapsed:.1f} s of CPU"  # linear: about 0.5 s; a list scan took 15 s
