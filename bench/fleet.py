"""Benchmark: one forced rotation of an N-origin lab with the local executor, with the Celery
executor on 1, 2 and 4 local workers (2 processes each, Redis on loopback), and the floor
(``bench.floor``, plain paramiko): wall time, the controller's CPU (per host) and the workers'.

    python -m bench.fleet --hosts 200 --workers 1,2,4   # as root; writes bench/FLEET.md

Every run must end with every host rotated (the summary line), or the figures are not kept.
Everything runs on this machine, so workers, controller and the lab's origins share its cores:
the celery figures show what slicing costs and how it spreads, not a fleet's real speed-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from agent.lab import Lab
from agent.lab import fleet as lab_fleet
from bench import proc
from bench.results import machine
from bench.tools import agent_env, log

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "FLEET.md"
_HZ = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Row:
    tool: str
    wall: float
    controller_cpu: float
    worker_cpu: float | None
    verified: bool


def tree_cpu(pids: list[int]) -> float:
    """utime + stime (+ reaped children) of ``pids`` and their live descendants, seconds."""
    ticks = 0
    for pid in {p for root in pids for p in proc.tree(root)}:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(x) for x in fields[11:15])
    return ticks / _HZ


def wait_workers(url: str, count: int, timeout: float = 120.0) -> None:
    """Until every worker answers a ping (a loaded machine takes a while to start them)."""
    from agent.fleet.app import make_app

    app = make_app(url)
    deadline = time.monotonic() + timeout
    while len(app.control.ping(timeout=1.0)) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"{count} workers did not answer in {timeout:g} s")


def rotate(lab: Lab, env: dict[str, str], n: int, *extra: str) -> proc.Measured:
    argv = [sys.executable, "-m", "agent", "rotate", "-i", lab.inventory_path, "--force"]
    return proc.run([*argv, *extra], env=env, cwd=str(REPO), timeout=1800)


def verified(run: proc.Measured, n: int) -> bool:
    return run.exit_code == 0 and f"rotation: {n} rotated" in run.stdout


def celery_row(lab: Lab, env: dict[str, str], n: int, workers: int) -> Row:
    fleet_dir = lab.dir / f"fleet-{workers}"
    fleet_dir.mkdir()
    url, started = lab_fleet.start(fleet_dir, workers, concurrency=2)
    try:
        pids = [s.pid for s in started if s.name != "redis-server"]
        wait_workers(url, workers)
        before = tree_cpu(pids)
        run = rotate(
            lab, {**env, "ORIGIN_AGENT_BROKER": url}, n, "--executor", "celery", "--forks", "10"
        )
        spent = tree_cpu(pids) - before
    finally:
        lab_fleet.stop(fleet_dir)
    log(f"celery x{workers}: {run.wall:.1f} s, exit {run.exit_code}")
    return Row(f"celery, {workers} worker(s) x 2", run.wall, run.cpu, spent, verified(run, n))


def floor_row(lab: Lab, env: dict[str, str], n: int) -> Row:
    run = proc.run(
        [sys.executable, "-m", "bench.floor", lab.inventory_path], env=env, cwd=str(REPO)
    )
    ok = run.exit_code == 0 and run.stdout.count('"ok": true') == n
    log(f"floor: {run.wall:.1f} s, exit {run.exit_code}")
    return Row("floor (paramiko script)", run.wall, run.cpu, None, ok)


def table(n: int, rows: list[Row]) -> str:
    lines = [
        "| tool | wall time | controller CPU | controller CPU per host | workers' CPU | verified |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        workers = "-" if r.worker_cpu is None else f"{r.worker_cpu:.1f} s"
        lines.append(
            f"| {r.tool} | {r.wall:.1f} s | {r.controller_cpu:.1f} s | "
            f"{r.controller_cpu * 1000 / n:.1f} ms | {workers} | {'yes' if r.verified else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet")
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args(argv)
    n, counts = args.hosts, [int(w) for w in args.workers.split(",")]
    lab_dir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    started = time.monotonic()
    lab = Lab.up(n, apache=n // 5, dir=lab_dir / "lab")
    env = agent_env(lab_dir)
    env.pop("ORIGIN_AGENT_BROKER", None)
    rows: list[Row] = []
    try:
        log(f"N={n}: warm-up rotation (first sites)")
        rotate(lab, env, n, "--forks", "50")
        local = rotate(lab, env, n, "--forks", "50")
        log(f"local: {local.wall:.1f} s, exit {local.exit_code}")
        rows.append(
            Row("local (threads, --forks 50)", local.wall, local.cpu, None, verified(local, n))
        )
        rows += [celery_row(lab, env, n, w) for w in counts]
        rows.append(floor_row(lab, env, n))
    finally:
        lab.down()
    text = (
        f"# Benchmark: fleet executor (issue 17)\n\nGenerated by `python -m bench.fleet --hosts {n} "
        f"--workers {args.workers}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{(time.monotonic() - started) / 60:.1f} min in all).\n\nMachine: {machine()}\n"
        f"Lab: {n} origins on this machine ({n // 5} apache2); one forced rotation each "
        "(`rotate --force`, after a warm-up rotation); Redis and the workers on loopback, "
        "2 processes per worker, 10 hosts per task. Controller CPU is the `rotate` process's "
        "(with its reaped children); workers' CPU is their process trees' over the run.\n\n"
        + table(n, rows)
        + "\n"
    )
    OUT.write_text(text)
    print(text)
    return 0 if all(r.verified for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
