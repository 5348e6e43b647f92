"""CPU time the lab hosts spent (seconds), for telling the origin-side cost of a run apart from
the controller's: every lab host runs on this machine, so its work competes with the controller
for the same cores (on a real fleet it is spread over the origins).

Sums, over every host, utime + stime + cutime + cstime of its sshd listener (each session's
sshd, shell and commands are reaped up that tree) and of its web server's master process (its
reloads, and the workers it reaped).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_HZ = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int | None) -> int:
    if not pid:
        return 0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(x) for x in fields[11:15])  # utime stime cutime cstime


def lab_cpu_seconds(hosts: Sequence[Any]) -> float:
    """Cumulative CPU seconds of every lab host's sshd and web server trees."""
    ticks = 0
    for host in hosts:
        ticks += _cpu(host.sshd_pid()) + _cpu(host.server_pid())
    return ticks / _HZ
