"""What the rotation benchmark measured, and what it makes of it: the runs of a session, their
medians, the tables, the issue's targets and bench/RESULTS.md (see :mod:`bench.rotate`)."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.tools import AGENT_TOOLS, LABELS, ansible_version, log


@dataclass
class Run:
    """One timed run of one tool at one fleet size."""

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
    """Everything one benchmark session measured."""

    runs: list[Run] = field(default_factory=list)
    trips: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    procs: dict[int, dict[str, int]] = field(default_factory=dict)  # on one origin, per run
    first_deploy: dict[int, float] = field(default_factory=dict)
    origin_cli: str = ""
    ansible_runs: int = 3
    how: str = "run"  # how the origin-agent rows ran: the CLI's run, or the driver (fallback)


TARGET_N = 50  # the targets are stated for N = 50


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
        "round trips per host: rotation, no-op | controller CPU per host: origin-agent, floor "
        "(ratio) | origin processes per run (nginx host; apache2 host) |",
        "|---|---|---|---|---|---|---|",
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
        lines.append(
            f"| {n} | {ratio(oa, fl)} | {ratio(nop, fl)} | {ratio(an, oa)} | {rt} | "
            f"{per_host_cpu(row, n)} | {procs_text(session.procs.get(n, {}))} |"
        )
    return "\n".join(lines)


def per_host_cpu(row: dict[str, Any], n: int) -> str:
    """Median controller CPU per host, origin-agent's rotation and the floor's, and their ratio."""
    oa, fl = row.get("origin-agent", {}).get("cpu"), row.get("floor", {}).get("cpu")
    if oa is None or fl is None:
        return "n/a"
    return f"{oa / n * 1000:.1f} ms, {fl / n * 1000:.1f} ms ({ratio(oa, fl)})"


def procs_text(procs: dict[str, int]) -> str:
    """``rotation R, no-op O`` for the nginx host, then the apache2 host."""
    parts = [
        f"rotation {procs.get('rotation ' + s, 'n/a')}, no-op {procs.get('no-op ' + s, 'n/a')}"
        for s in ("nginx", "apache")
        if f"rotation {s}" in procs
    ]
    return "; ".join(parts) or "n/a"


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
    """Write bench/RESULTS.md (tables, targets, method, every run); return the tables and
    targets for the terminal."""
    tab = table(summary, tools, session)
    text = f"""# Benchmark: fleet rotation (issue 7)

Generated by `{command}` ({started}, {elapsed / 60:.1f} min in all).

Machine: {machine()}; {ansible_version() if "ansible" in tools else "Ansible not run"}.
Lab: `origin-agent lab` hosts on this machine (own sshd, nginx or apache2 per host, loopback),
a fifth of them apache2. origin-agent ran as `{session.origin_cli}` (`--force` / `-e force=true`
for the rotation, without it for the no-op).

{tab}

{targets_text(summary, session)}
"""
    path.write_text(text + "\n" + method_text(tools, session) + runs_text(session))
    return tab + "\n\n" + targets_text(summary, session)


def method_text(tools: Sequence[str], session: Session) -> str:
    """What each figure is, and how the tools ran."""
    first = ", ".join(f"N={n}: {t:.2f} s" for n, t in session.first_deploy.items())
    return f"""What each figure is:
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
- controller CPU per host: the median controller CPU of a run divided by N.
- origin processes: successful `execve` calls under one lab host's sshd during a CLI run limited
  to that host (`bench/origin_procs.py`, strace), for the first nginx and the first apache2 host.
- floor: `bench/floor.py`, plain paramiko + cryptography, a thread per host, one connection and
  one remote command per host, then a handshake (see its docstring).
- Ansible: `bench/ansible/rotate.yml` with community.crypto (key, CSR, certificate made on the
  controller with the lab CA), pipelining on, forks = N, facts not gathered, strict host keys
  (the lab's known_hosts), ssh ControlPersist as Ansible sets it (a fresh control path per run).
- First deployment with origin-agent (not in the table): {first}.

"""


def runs_text(session: Session) -> str:
    """The table of every run, counted or not (with why not)."""
    runs = "\n".join(
        f"| {x.n} | {x.round} | {x.tool} | {x.wall:.2f} | {x.peak_mib:.1f} | {x.cpu:.2f} | "
        f"{x.lab_cpu:.2f} | {x.load:.1f} | "
        f"{'yes' if x.verified else 'no: ' + x.note.replace('|', '/')} |"
        for x in session.runs
    )
    return f"""All runs:

| N | round | tool | wall (s) | peak (MiB) | CPU (s) | lab CPU (s) | load avg before | counted |
|---|---|---|---|---|---|---|---|---|
{runs}
"""


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
