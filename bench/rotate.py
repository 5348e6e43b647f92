"""Fleet rotation, side by side: origin-agent against the floor and against Ansible (issue 7).

    python -m bench.rotate [--hosts 10,50] [--runs 5] [--ansible-runs 3]
                           [--tools origin-agent,rotate-cli,floor,ansible,driver]

For each fleet size N: start a lab of N hosts (a fifth of them apache2, the rest nginx), deploy
once with origin-agent (not timed), count origin-agent's SSH round trips per host for a
rotation and for a no-op (a separate, instrumented run), then run interleaved rounds; each
round runs, each as its own subprocess: origin-agent full rotation (``force``), origin-agent
no-op, ``origin-agent rotate --force`` (its rolling batches), the floor (bench/floor.py),
Ansible (bench/ansible/rotate.yml; only in the first ``--ansible-runs`` rounds: it takes
minutes a run at N = 50). After every run the
benchmark does a TLS handshake with every host and counts the run only if every host serves a
new certificate (the no-op: the same one as before, and no host reported a change).
Figures are medians of the verified runs; ratios come from the same session.
Writes bench/RESULTS.md and prints the table. Exit status: 0 when every target of the issue
(at N = 50, else the largest N) is met, 2 when one is not, 1 when an origin-agent run did not
rotate every host or a tool has fewer than 3 verified runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import origin_procs, proc, served
from bench.labcpu import lab_cpu_seconds
from bench.results import Run, Session, complete, summarize, targets, write_results
from bench.tools import (
    ANSIBLE_VENV,
    BENCH,
    NOOP,
    REPO,
    TOOLS,
    agent_argv,
    agent_env,
    agent_recap,
    cli_works,
    ensure_ansible,
    failure,
    log,
    stop_adopted,
)

__all__ = ["Run", "Session", "complete", "main", "summarize", "targets"]


def bench_size(
    n: int,
    runs: int,
    tools: Sequence[str],
    first: int,
    apache_share: float,
    session: Session,
    ansible_runs: int = 3,
) -> None:
    from agent.lab import Lab

    lab_dir = Path(tempfile.mkdtemp(prefix=f"origin-agent-bench-{n}-"))
    shutil.rmtree(lab_dir)
    apache = round(n * apache_share)
    log(f"N={n}: lab up ({n - apache} nginx, {apache} apache2) at 127.0.1.{first}-{first + n - 1}")
    lab = Lab.up(n, apache=apache, first=first, dir=lab_dir)
    try:
        inv = lab.inventory_path
        env = agent_env(lab_dir)
        targets = [(h.name, h.address, f"{h.name}.lab.test") for h in lab.hosts]
        names = [h.name for h in lab.hosts]
        session.origin_cli = " ".join(agent_argv("INV", n, True, session.how)[2:]).replace(
            str(REPO) + "/", ""
        )
        # first deployment (not a rotation, not timed in the table)
        m = proc.run(agent_argv(inv, n, False, session.how), env=env, cwd=str(REPO))
        fps = served.fingerprints(targets)
        if m.exit_code != 0 or any(fp is None for fp in fps.values()):
            raise SystemExit(
                f"N={n}: first deployment failed ({m.exit_code}): {m.stderr[-800:]}"
                f"{m.stdout[-800:]}"
            )
        session.first_deploy[n] = m.wall
        log(f"N={n}: first deployment {m.wall:.2f}s")
        session.trips[n] = count_trips(inv, n, env, lab_dir, session.how)
        if session.how == "run":
            session.procs[n] = origin_procs.measure(lab, inv, env)
            log(f"N={n}: processes on one origin per run: {session.procs[n]}")
        fps = served.fingerprints(targets)
        for r in range(1, runs + 1):
            for tool in tools:
                if tool == "ansible" and r > ansible_runs:
                    continue  # Ansible takes minutes a run at N = 50: fewer rounds
                fps = one_run(tool, n, r, inv, env, lab, targets, names, fps, session)
    finally:
        log(f"N={n}: lab down")
        lab.down()


def count_trips(
    inv: str, n: int, env: dict[str, str], lab_dir: Path, how: str
) -> dict[str, dict[str, Any]]:
    """origin-agent's round trips per host (rotation, then no-op), from instrumented CLI runs
    (or the driver's own report when the CLI does not start)."""
    out: dict[str, dict[str, Any]] = {}
    for kind, force in (("rotation", True), ("no-op", False)):
        path = lab_dir / f"trips-{kind}.json"
        if how == "driver":
            result = subprocess.run(
                agent_argv(inv, n, force, "driver"),
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                cwd=REPO,
            )
            per_host = {
                d["host"]: d
                for d in map(json.loads, result.stdout.splitlines())
                if "host" in d and "round_trips" in d
            }
        else:
            argv = [
                sys.executable,
                "-m",
                "bench.count_trips",
                str(path),
                "--",
                *agent_argv(inv, n, force, how)[3:],
            ]
            result = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=600, cwd=REPO
            )
            per_host = json.loads(path.read_text()) if path.exists() else {}
        trips = [v["round_trips"] for v in per_host.values()]
        out[kind] = {
            "hosts": len(trips),
            "min": min(trips, default=0),
            "max": max(trips, default=0),
            "commands": max((v["commands"] for v in per_host.values()), default=0),
            "file_ops": max((v["file_ops"] for v in per_host.values()), default=0),
            "exit": result.returncode,
        }
        log(f"N={n}: round trips per host, {kind}: {out[kind]}")
    return out


def one_run(
    tool: str,
    n: int,
    r: int,
    inv: str,
    env: dict[str, str],
    lab: Any,
    targets: list[tuple[str, str, str]],
    names: list[str],
    before: dict[str, str | None],
    session: Session,
) -> dict[str, str | None]:
    """One timed run of ``tool``, checked by a handshake with every host; returns what each
    host serves afterwards."""
    load = os.getloadavg()[0]
    cpu0 = lab_cpu_seconds(lab.hosts)
    m, note = run_tool(tool, n, inv, env, session)
    lab_cpu = lab_cpu_seconds(lab.hosts) - cpu0
    after = served.fingerprints(targets)
    ok, what = check_served(tool, n, names, before, after)
    verified = ok and m.exit_code == 0 and not note
    if m.exit_code != 0:
        note = note or f"exit {m.exit_code}: {(m.stderr or m.stdout).strip()[-300:]}"
    if not ok:
        note = (note + "; " if note else "") + what
    session.runs.append(
        Run(
            tool,
            n,
            r,
            m.wall,
            m.peak_mib,
            m.tree_procs,
            verified,
            m.cpu,
            m.peak_pss_mib,
            lab_cpu,
            load,
            note,
        )
    )
    log(
        f"N={n} round {r}: {tool:18} {m.wall:7.2f}s {m.peak_mib:7.1f} MiB cpu {m.cpu:6.2f}s "
        f"lab-cpu {lab_cpu:5.2f}s load {load:4.1f} "
        f"{'verified' if verified else 'NOT COUNTED: ' + note} ({what})"
    )
    return after


def run_tool(
    tool: str, n: int, inv: str, env: dict[str, str], session: Session
) -> tuple[proc.Measured, str]:
    """Run ``tool`` once, measured; the note says what its own report shows wrong (origin-agent
    only: hosts missing from the recap, or changes in a no-op)."""
    note = ""
    if tool in ("origin-agent", "origin-agent-noop", "driver", "driver-noop", "rotate-cli"):
        how = {"driver": "driver", "driver-noop": "driver", "rotate-cli": "rotate"}.get(
            tool, session.how
        )
        m = proc.run(agent_argv(inv, n, tool not in NOOP, how), env=env, cwd=str(REPO))
        changed = agent_recap(m.stdout)
        if len(changed) != n:
            note = f"recap has {len(changed)}/{n} ok hosts{failure(m.stdout)}"
        elif tool in NOOP and any(changed.values()):
            note = f"{sum(1 for v in changed.values() if v)} hosts changed in a no-op"
    elif tool == "floor":
        m = proc.run([sys.executable, "-m", "bench.floor", inv], env=env, cwd=str(REPO))
    elif tool == "ansible":
        m = run_ansible(n, inv, env)
    else:
        raise SystemExit(f"unknown tool {tool}")
    return m, note


def run_ansible(n: int, inv: str, env: dict[str, str]) -> proc.Measured:
    """One Ansible run with its own work and control-path directories, removed afterwards
    with the ssh masters it left behind."""
    work = tempfile.mkdtemp(prefix="bench-ansible-")  # 0700: holds the keys made for the run
    cp = tempfile.mkdtemp(prefix="bench-ansible-cp-")
    aenv = dict(env)
    aenv.update(
        ANSIBLE_CONFIG=str(BENCH / "ansible/ansible.cfg"),
        ANSIBLE_SSH_CONTROL_PATH_DIR=cp,
        ANSIBLE_LOCAL_TEMP=os.path.join(work, ".tmp"),
        ANSIBLE_NOCOLOR="1",
    )
    m = proc.run(
        [
            str(ANSIBLE_VENV / "bin/ansible-playbook"),
            "-i",
            inv,
            "-f",
            str(n),
            "-e",
            f"bench_work={work}",
            str(BENCH / "ansible/rotate.yml"),
        ],
        env=aenv,
        cwd=str(BENCH / "ansible"),
        timeout=1800,
    )
    stop_adopted(cp)
    for path in (work, cp):
        shutil.rmtree(path, ignore_errors=True)
    return m


def check_served(
    tool: str,
    n: int,
    names: list[str],
    before: dict[str, str | None],
    after: dict[str, str | None],
) -> tuple[bool, str]:
    """Whether every host serves what the run should leave (a new certificate; the same one
    after a no-op), and that in words."""
    if tool in NOOP:
        ok = all(after[h] is not None and after[h] == before[h] for h in names)
        what = "same certificate on every host" if ok else "a certificate changed or is not served"
    else:
        fresh = [h for h in names if after[h] is not None and after[h] != before[h]]
        ok = len(fresh) == n
        what = f"{len(fresh)}/{n} hosts serve a new certificate"
    return ok, what


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rotate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--hosts", default="10,50", help="fleet sizes, comma-separated (default 10,50)"
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="rounds per fleet size, at least 3 (default 5)"
    )
    parser.add_argument(
        "--ansible-runs",
        type=int,
        default=3,
        help="rounds that include Ansible (the first ones; default 3: it takes minutes a run)",
    )
    parser.add_argument(
        "--tools",
        default="origin-agent,rotate-cli,floor,ansible",
        help="origin-agent (the CLI's run with bench/plans/rotate.yml: rotation and "
        "no-op), rotate-cli (origin-agent rotate --force, rolling batches), driver "
        "(bench/drive_origin_agent.py: rotation and no-op), floor, ansible",
    )
    parser.add_argument(
        "--first", type=int, default=100, help="first lab host index (127.0.1.FIRST)"
    )
    parser.add_argument("--apache-share", type=float, default=0.2, help="share of apache2 hosts")
    parser.add_argument("--out", default=str(BENCH / "RESULTS.md"))
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.hosts.split(",") if x.strip()]
    wanted = [t.strip() for t in args.tools.split(",") if t.strip()]
    tools = [t for t in TOOLS if t in wanted or (t in NOOP and t[:-5] in wanted)]
    if args.runs < 3 or args.ansible_runs < 1 or not sizes or not tools:
        parser.error("need at least one run, one size and one tool")
    if "ansible" in tools:
        ensure_ansible()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0 = time.monotonic()
    session = Session(ansible_runs=args.ansible_runs)
    if any(t.startswith("origin-agent") for t in tools) and not cli_works(agent_env(Path("/tmp"))):
        log(
            "the origin-agent CLI does not start: "
            "the origin-agent rows use bench/drive_origin_agent.py"
        )
        session.how = "driver"
    for n in sizes:
        bench_size(n, args.runs, tools, args.first, args.apache_share, session, args.ansible_runs)
    command = "python -m bench.rotate " + " ".join(argv if argv is not None else sys.argv[1:])
    summary = summarize(session, sizes, tools)
    text = write_results(
        Path(args.out), session, summary, tools, command.strip(), started, time.monotonic() - t0
    )
    print(text)
    if not complete(session, sizes, tools):
        return 1
    _, rows = targets(summary, session)
    return 2 if any(ok is False for _, ok in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
