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
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import proc, served
from bench.labcpu import lab_cpu_seconds

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
ANSIBLE_VENV = BENCH / ".venv-ansible"
TOOLS = (
    "origin-agent",
    "origin-agent-noop",
    "driver",
    "driver-noop",
    "rotate-cli",
    "floor",
    "ansible",
)
LABELS = {
    "origin-agent": "origin-agent rotation",
    "origin-agent-noop": "origin-agent no-op",
    "driver": "origin-agent in-process driver, rotation",
    "driver-noop": "origin-agent in-process driver, no-op",
    "rotate-cli": "`origin-agent rotate --force` (rolling batches)",
    "floor": "floor (paramiko script)",
    "ansible": "Ansible",
}
NOOP = ("origin-agent-noop", "driver-noop")


@dataclass
class Run:
    tool: str
    n: int
    round: int
    wall: float
    peak_mib: float
    procs: int
    verified: bool
    cpu: float = 0.0  # CPU seconds of the tool's process tree (the controller)
    pss_mib: float = 0.0  # peak PSS of the tool's process tree
    lab_cpu: float = 0.0  # CPU seconds the lab hosts (sshd, web servers) spent during the run
    load: float = 0.0  # the machine's 1-minute load average before the run
    note: str = ""


@dataclass
class Session:
    runs: list[Run] = field(default_factory=list)
    trips: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    first_deploy: dict[int, float] = field(default_factory=dict)
    origin_cli: str = ""
    ansible_runs: int = 3
    how: str = "run"  # how the origin-agent rows ran: the CLI's run, or the driver (fallback)


TARGET_N = 50  # the targets are stated for N = 50
AGENT_TOOLS = ("origin-agent", "origin-agent-noop", "rotate-cli", "driver", "driver-noop")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the tools ------------------------------------------------------------------------------


def agent_env(lab_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["ORIGIN_AGENT_STATE_DIR"] = str(lab_dir / "state")
    env["ORIGIN_AGENT_LOG_DIR"] = str(lab_dir / "logs")
    return env


def cli_works(env: dict[str, str]) -> bool:
    """The origin-agent CLI starts (it may be mid-edit in a shared tree)."""
    probe = subprocess.run(
        [sys.executable, "-m", "agent", "run", "--help"],
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=60,
    )
    return probe.returncode == 0


def agent_argv(inventory: str, n: int, force: bool, how: str) -> list[str]:
    """How origin-agent runs: ``run`` (the CLI with bench/plans/rotate.yml: every host in one
    batch, forks = N), ``rotate`` (the CLI's own rotate command with its default rolling
    batches), or ``driver`` (bench/drive_origin_agent.py: module + transport, no runner)."""
    if how == "rotate":
        argv = [
            sys.executable,
            "-m",
            "agent",
            "rotate",
            "-i",
            inventory,
            "--forks",
            str(n),
            "--json",
        ]
        return argv + (["--force"] if force else [])
    if how == "driver":
        return [sys.executable, "-m", "bench.drive_origin_agent", inventory] + (
            ["--force"] if force else []
        )
    argv = [
        sys.executable,
        "-m",
        "agent",
        "run",
        str(BENCH / "plans/rotate.yml"),
        "-i",
        inventory,
        "--forks",
        str(n),
        "--json",
    ]
    return argv + (["-e", "force=true"] if force else [])


def agent_recap(stdout: str) -> dict[str, int]:
    """``{host: changed}`` of the hosts that succeeded, from the CLI's last JSON event or the
    driver's per-host lines (empty if there are none)."""
    driver = [json.loads(ln) for ln in stdout.splitlines() if ln.startswith('{"host"')]
    if driver:
        return {d["host"]: int(d["changed"]) for d in driver if d.get("ok")}
    for line in reversed(stdout.strip().splitlines()):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "run_finished":
            return {
                h["host"]: int(h["changed"])
                for h in event["hosts"]
                if not h.get("failed") and not h.get("unreachable")
            }
    return {}


def failure(stdout: str) -> str:
    """``: HOST: ERROR`` of the first failed host in the CLI's JSON recap, if any."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "run_finished":
            for h in event.get("hosts", []):
                if h.get("failed") or h.get("unreachable"):
                    return f": {h['host']}: {str(h.get('error', ''))[:300]}"
            return ""
        if event.get("host") and event.get("error"):  # the driver's per-host line
            return f": {event['host']}: {str(event['error'])[:300]}"
    return ""


def ensure_ansible() -> Path:
    """The benchmark's own Ansible (the ``ansible`` distribution: ansible-core and
    community.crypto), installed from PyPI on first use."""
    playbook = ANSIBLE_VENV / "bin/ansible-playbook"
    crypto = list(
        ANSIBLE_VENV.glob("lib/python*/site-packages/ansible_collections/community/crypto")
    )
    if playbook.exists() and crypto:
        return playbook
    log(f"installing ansible (ansible-core + community.crypto) into {ANSIBLE_VENV}")
    subprocess.run([sys.executable, "-m", "venv", str(ANSIBLE_VENV)], check=True)
    pip = str(ANSIBLE_VENV / "bin/pip")
    subprocess.run([pip, "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([pip, "install", "-q", "ansible"], check=True)
    return playbook


def ansible_version() -> str:
    try:
        out = subprocess.run(
            [str(ANSIBLE_VENV / "bin/ansible"), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        core = out.splitlines()[0].split("core ")[-1].rstrip("]")
        pkg = subprocess.run(
            [str(ANSIBLE_VENV / "bin/pip"), "show", "ansible"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        dist = next(
            (ln.split(": ")[1] for ln in pkg.splitlines() if ln.startswith("Version:")), "?"
        )
        return f"ansible {dist} (ansible-core {core})"
    except (OSError, IndexError, subprocess.SubprocessError):
        return "ansible ?"


def stop_adopted(marker: str) -> None:
    """Stop the ssh ControlPersist masters an Ansible run left behind (found by their control
    path, which is unique to that run) and reap them: we are the lab's subreaper."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmd and b"ssh" in cmd:
            pids.append(int(entry))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            time.sleep(0.02)


# -- one fleet size ----------------------------------------------------------------------------


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
    note = ""
    load = os.getloadavg()[0]
    cpu0 = lab_cpu_seconds(lab.hosts)
    cleanup: list[str] = []
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
        work = tempfile.mkdtemp(prefix="bench-ansible-")  # 0700: holds the keys made for the run
        cp = tempfile.mkdtemp(prefix="bench-ansible-cp-")
        cleanup += [work, cp]
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
    else:
        raise SystemExit(f"unknown tool {tool}")
    lab_cpu = lab_cpu_seconds(lab.hosts) - cpu0
    for path in cleanup:
        shutil.rmtree(path, ignore_errors=True)
    after = served.fingerprints(targets)
    if tool in NOOP:
        ok = all(after[h] is not None and after[h] == before[h] for h in names)
        what = "same certificate on every host" if ok else "a certificate changed or is not served"
    else:
        fresh = [h for h in names if after[h] is not None and after[h] != before[h]]
        ok = len(fresh) == n
        what = f"{len(fresh)}/{n} hosts serve a new certificate"
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


# -- results ---------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(
    session: Session, sizes: Sequence[int], tools: Sequence[str]
) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for n in sizes:
        row: dict[str, Any] = {}
        for tool in tools:
            good = [x for x in session.runs if x.n == n and x.tool == tool and x.verified]
            total = [x for x in session.runs if x.n == n and x.tool == tool]
            row[tool] = {
                "wall": median([x.wall for x in good]),
                "peak": median([x.peak_mib for x in good]),
                "lab_cpu": median([x.lab_cpu for x in good]),
                "cpu": median([x.cpu for x in good]),
                "pss": median([x.pss_mib for x in good]),
                "min": min((x.wall for x in good), default=None),
                "max": max((x.wall for x in good), default=None),
                "procs": max((x.procs for x in good), default=0),
                "verified": len(good),
                "runs": len(total),
            }
        out[n] = row
    return out


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def fmt(v: float | None, unit: str = "s", digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f} {unit}"


def table(summary: dict[int, dict[str, Any]], tools: Sequence[str], session: Session) -> str:
    lines = [
        "| N | tool | wall time (median) | range | controller peak memory (median) | "
        "controller CPU (median) | lab hosts' CPU (median) | verified runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, row in summary.items():
        for tool in tools:
            s = row[tool]
            rng = "n/a" if s["min"] is None else f"{s['min']:.2f}-{s['max']:.2f} s"
            mem = fmt(s["peak"], "MiB", 1)
            if s["procs"] > 1:
                mem += f" RSS sum, {fmt(s['pss'], 'MiB', 1)} PSS ({s['procs']} processes)"
            lines.append(
                f"| {n} | {LABELS[tool]} | {fmt(s['wall'])} | {rng} | {mem} | "
                f"{fmt(s['cpu'])} | {fmt(s['lab_cpu'])} | {s['verified']}/{s['runs']} |"
            )
    lines += [
        "",
        "| N | origin-agent / floor | no-op / floor rotation | Ansible / origin-agent | "
        "round trips per host: rotation, no-op |",
        "|---|---|---|---|---|",
    ]
    for n, row in summary.items():
        oa, fl = row.get("origin-agent", {}).get("wall"), row.get("floor", {}).get("wall")
        nop, an = row.get("origin-agent-noop", {}).get("wall"), row.get("ansible", {}).get("wall")
        trips = session.trips.get(n, {})
        rt = (
            ", ".join(
                f"{trips[k]['max']}" if trips[k]["hosts"] == n else "n/a"
                for k in ("rotation", "no-op")
                if k in trips
            )
            or "n/a"
        )
        lines.append(f"| {n} | {ratio(oa, fl)} | {ratio(nop, fl)} | {ratio(an, oa)} | {rt} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor() or "?",
    )
    mem = next(
        (
            int(ln.split()[1]) // 1024
            for ln in Path("/proc/meminfo").read_text().splitlines()
            if ln.startswith("MemTotal")
        ),
        0,
    )
    import cryptography
    import paramiko

    distro = (
        Path("/etc/debian_version").read_text().strip()
        if Path("/etc/debian_version").exists()
        else "?"
    )
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem} MiB RAM, Linux {platform.release()}, "
        f"Debian {distro}, "
        f"Python {platform.python_version()}, paramiko {paramiko.__version__}, "
        f"cryptography {cryptography.__version__}"
    )


def targets(
    summary: dict[int, dict[str, Any]], session: Session
) -> tuple[int, list[tuple[str, bool | None]]]:
    """The issue's targets at N = 50 (else the largest N): (text, met; None = not measured)."""
    n = TARGET_N if TARGET_N in summary else max(summary)
    row = summary[n]
    oa, fl = row.get("origin-agent", {}).get("wall"), row.get("floor", {}).get("wall")
    ans = row.get("ansible", {}).get("wall")
    nop, peak = (
        row.get("origin-agent-noop", {}).get("wall"),
        row.get("origin-agent", {}).get("peak"),
    )
    trips = session.trips.get(n, {})
    rt = trips["rotation"]["max"] if trips.get("rotation", {}).get("hosts") == n else None
    rn = trips["no-op"]["max"] if trips.get("no-op", {}).get("hosts") == n else None
    return n, [
        (
            f"full rotation within 1.3x of the floor: {ratio(oa, fl)}",
            None if not (oa and fl) else oa / fl <= 1.3,
        ),
        (
            f"no-op no slower than 0.8x the floor's rotation: {ratio(nop, fl)}",
            None if not (nop and fl) else nop / fl <= 0.8,
        ),
        (
            f"round trips per host <= 3 (rotation), 1 (no-op): {rt}, {rn}",
            None if rt is None or rn is None else rt <= 3 and rn <= 1,
        ),
        (
            f"controller peak memory < 90 MiB: {fmt(peak, 'MiB', 1)}",
            None if peak is None else peak < 90,
        ),
        (
            f"over 40x faster than Ansible: {ratio(ans, oa)}",
            None if not (ans and oa) else ans / oa > 40,
        ),
    ]


def targets_text(summary: dict[int, dict[str, Any]], session: Session) -> str:
    n, rows = targets(summary, session)
    marks = {None: "n/a", True: "met", False: "NOT met"}
    return "\n".join(
        [f"Targets (issue 7) at N = {n}:", ""] + [f"- {text} -> {marks[ok]}" for text, ok in rows]
    )


def write_results(
    path: Path,
    session: Session,
    summary: dict[int, dict[str, Any]],
    tools: Sequence[str],
    command: str,
    started: str,
    elapsed: float,
) -> str:
    tab = table(summary, tools, session)
    runs = "\n".join(
        f"| {x.n} | {x.round} | {x.tool} | {x.wall:.2f} | {x.peak_mib:.1f} | {x.cpu:.2f} | "
        f"{x.lab_cpu:.2f} | {x.load:.1f} | "
        f"{'yes' if x.verified else 'no: ' + x.note.replace('|', '/')} |"
        for x in session.runs
    )
    first = ", ".join(f"N={n}: {t:.2f} s" for n, t in session.first_deploy.items())
    text = f"""# Benchmark: fleet rotation (issue 7)

Generated by `{command}` ({started}, {elapsed / 60:.1f} min in all).

Machine: {machine()}; {ansible_version() if "ansible" in tools else "Ansible not run"}.
Lab: `origin-agent lab` hosts on this machine (own sshd, nginx or apache2 per host, loopback),
a fifth of them apache2. origin-agent ran as `{session.origin_cli}` (`--force` / `-e force=true`
for the rotation, without it for the no-op).

{tab}

{targets_text(summary, session)}

What each figure is:
- wall time: from starting the tool's process to its exit (interpreter start and imports
  included), median of the verified runs; runs interleaved per round in the order
  {", ".join(tools)} (Ansible in the first {session.ansible_runs} rounds only).
  A run counts only if, checked by a TLS handshake (SNI) with every host
  afterwards, every host serves a new certificate (no-op: the same one, and no host changed).
- peak memory: the largest sampled sum of RSS over the tool's whole process tree (Ansible forks
  a worker per host and an ssh client per connection), or the kernel's high-water mark of its
  largest process if higher. For a tree of forked processes the RSS sum counts shared pages
  once per process; the PSS sum (pages shared by k processes count 1/k) is shown beside it.
- controller CPU: user + system CPU seconds of the tool's process and its descendants
  (`wait4`). With one GIL, a Python controller's CPU time is largely serialized.
- lab hosts' CPU: CPU seconds the lab's sshd and web server process trees used during the run
  (`bench/labcpu.py`). The lab runs on the same cores as the controller, so origin-side work
  (sessions, shell commands, config test, reload) lengthens the wall time here; on a real fleet
  it is spread over the origins.
- load avg: the machine's 1-minute load average before each run (other work on the machine
  makes runs slower; interleaving keeps the ratios fair).
- round trips: origin-agent's `Connection.counters` (commands + SFTP operations after the
  connection is up), highest over the hosts, from an instrumented run (`bench/count_trips.py`).
  The floor makes 1 per host by construction; the controller's TLS handshakes are not counted.
- floor: `bench/floor.py`, plain paramiko + cryptography, a thread per host, one connection and
  one remote command per host, then a handshake (see its docstring).
- Ansible: `bench/ansible/rotate.yml` with community.crypto (key, CSR, certificate made on the
  controller with the lab CA), pipelining on, forks = N, facts not gathered, strict host keys
  (the lab's known_hosts), ssh ControlPersist as Ansible sets it (a fresh control path per run).
- First deployment with origin-agent (not in the table): {first}.

All runs:

| N | round | tool | wall (s) | peak (MiB) | CPU (s) | lab CPU (s) | load avg before | counted |
|---|---|---|---|---|---|---|---|---|
{runs}
"""
    path.write_text(text)
    return tab + "\n\n" + targets_text(summary, session)


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


def complete(session: Session, sizes: Sequence[int], tools: Sequence[str]) -> bool:
    """Every origin-agent run verified, and at least 3 verified runs of every tool and size
    (a median of fewer says little). Another tool's unverified run is reported, not counted."""
    ok = True
    for run in session.runs:
        if run.tool in AGENT_TOOLS and not run.verified:
            log(f"N={run.n} round {run.round}: {run.tool} did not rotate every host")
            ok = False
    for n in sizes:
        for tool in tools:
            done = sum(1 for r in session.runs if r.n == n and r.tool == tool and r.verified)
            if done < 3:
                log(f"N={n}: {tool} has {done} verified runs (fewer than 3)")
                ok = False
    return ok


if __name__ == "__main__":
    sys.exit(main())
