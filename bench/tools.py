"""The tools the rotation benchmark compares, and how each one is started and read: origin-agent
(the CLI's ``run``, its ``rotate`` command, or the in-process driver), the floor and Ansible
(see :mod:`bench.rotate`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
AGENT_TOOLS = ("origin-agent", "origin-agent-noop", "rotate-cli", "driver", "driver-noop")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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
