"""Processes one origin-agent run starts on an origin: ``strace -f -e trace=execve`` attached to
a lab host's sshd listener around a run limited to that host (``-l HOST``); every successful
``execve`` counts (the session's sshd, the login shell, ``sh`` and each command it runs).

    python -m bench.origin_procs LAB_DIR HOST [--force]   # prints the count and the programs
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.tools import REPO, agent_argv, agent_env


def count(sshd_pid: int, argv: list[str], env: dict[str, str]) -> tuple[int, Counter[str]]:
    """The processes started under ``sshd_pid`` while ``argv`` runs: how many, and which
    programs (``(0, {})`` when strace is missing or cannot attach)."""
    if not shutil.which("strace") or not sshd_pid:
        return 0, Counter()
    with tempfile.TemporaryDirectory(prefix="bench-procs-") as tmp:
        out = Path(tmp) / "execve.txt"
        tracer = subprocess.Popen(
            [
                "strace",
                "-f",
                "-qq",
                "-z",
                "-e",
                "trace=execve",
                "-o",
                str(out),
                "-p",
                str(sshd_pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)  # attached
            subprocess.run(argv, env=env, cwd=REPO, capture_output=True, timeout=300, check=False)
            time.sleep(1.0)  # the session's last commands end after the controller's
        finally:
            tracer.terminate()
            tracer.wait(timeout=10)
        lines = out.read_text().splitlines() if out.exists() else []
    done = [ln for ln in lines if 'execve("' in ln]  # -z: successful calls only
    programs = Counter(ln.split('execve("', 1)[1].split('"', 1)[0] for ln in done)
    return len(done), programs


def measure(lab: Any, inventory: str, env: dict[str, str]) -> dict[str, int]:
    """Processes per run on the first nginx and the first apache2 host: a rotation (``force``)
    and a no-op, each a CLI run limited to that host."""
    out: dict[str, int] = {}
    for server in ("nginx", "apache"):
        host = next((h for h in lab.hosts if h.server == server), None)
        if host is None:
            continue
        for kind, force in (("rotation", True), ("no-op", False)):
            argv = [*agent_argv(inventory, 1, force, "run"), "-l", host.name]
            out[f"{kind} {server}"], _ = count(host.sshd_pid() or 0, argv, env)
    return out


def main(argv: list[str]) -> int:
    from agent.lab import Lab

    lab_dir, name = Path(argv[0]), argv[1]
    lab = Lab.load(lab_dir)
    host = next(h for h in lab.hosts if h.name == name)
    run = [*agent_argv(str(lab.inventory_path), 1, "--force" in argv, "run"), "-l", name]
    n, programs = count(host.sshd_pid() or 0, run, agent_env(lab_dir))
    print(json.dumps({"host": name, "processes": n, "programs": dict(programs.most_common())}))
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
