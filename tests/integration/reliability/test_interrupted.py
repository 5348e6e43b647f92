"""SIGKILL the real command line at random points of a rotation (fixed seed, bounded): after
every kill each origin serves a certificate with its matching key, every certificate version
on disk holds a matching pair, and a plain re-run converges and cleans the temporaries."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from agent.lab import Lab, LabHost
from tests.integration.reliability import figures
from tests.integration.reliability.fleet import (
    CERT_ROOT,
    cli_argv,
    cli_env,
    read,
    served_leaf,
    site_name,
    site_state,
    spki_of_cert,
    spki_of_key,
    wait_served,
    write_inventory,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 12
SEED = 8
TEMP = ".origin-agent-tmp"


def transaction_running(host: LabHost) -> bool:
    """A transaction or gather script (``sh -c SCRIPT origin-agent``) still runs in the host."""
    for pid in host.pids():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[:2] == [b"sh", b"-c"] and b"origin-agent" in argv[3:4]:
            return True
    return False


def wait_quiet(host: LabHost, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while transaction_running(host):
        assert time.monotonic() < deadline, (
            f"{host.name}: a transaction still runs after {timeout}s"
        )
        time.sleep(0.05)


def leftovers(host: LabHost) -> list[str]:
    found = []
    for base in (
        f"{CERT_ROOT}/{site_name(host)}",
        "/etc/nginx/sites-available",
        "/etc/nginx/sites-enabled",
        "/etc/apache2/sites-available",
        "/etc/apache2/sites-enabled",
        "/etc/nginx/conf.d",
    ):
        try:
            found += [f"{base}/{n}" for n in os.listdir(host.path(base)) if n.startswith(TEMP)]
        except OSError:
            continue
    return found


def pairs_problems(host: LabHost) -> list[str]:
    """Every version directory holds a certificate and its own key; the served leaf is the
    current one, and its key is current/privkey.pem."""
    problems: list[str] = []
    root = f"{CERT_ROOT}/{site_name(host)}"
    for entry in sorted(os.listdir(host.path(root))):
        if entry.startswith(".") or entry in ("current", "next", "site-files"):
            continue  # the link, the pre-made next key, where the site was placed
        cert, key = (
            read(host, f"{root}/{entry}/cert.pem"),
            read(host, f"{root}/{entry}/privkey.pem"),
        )
        if cert is None or key is None:
            problems.append(f"{host.name}: version {entry} is incomplete")
        elif spki_of_cert(cert) != spki_of_key(key):
            problems.append(f"{host.name}: version {entry} pairs a certificate with another key")
    state = site_state(host)
    served = wait_served(host, state.current_cert)
    if served != state.current_cert:
        problems.append(f"{host.name}: serves {served} but current/ is {state.current_cert}")
    leaf = served_leaf(host)
    key = read(host, f"{root}/current/privkey.pem")
    if leaf is None or key is None or spki_of_cert(leaf) != spki_of_key(key):
        problems.append(f"{host.name}: the served certificate does not match current/privkey.pem")
    return problems


def start_rotation(
    inv: str, env: dict[str, str]
) -> tuple[subprocess.Popen[str], list[str], threading.Thread]:
    """``origin-agent rotate --force --json`` in the background; its events are collected."""
    proc = subprocess.Popen(
        cli_argv("rotate", "-i", inv, "--force", "--json"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    events: list[str] = []

    def collect() -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                events.append(json.loads(line)["event"])

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    return proc, events, reader


def test_killing_the_controller_anywhere_never_mismatches_a_certificate_and_its_key(
    make_lab: object, tmp_path: Path, state_dir: str
) -> None:
    """Each kill comes a random time (0-0.8 s) after the start of a random batch of the
    rolling rotation (one host per batch here), so kills land in every phase of a host's
    step (connect, gather, issue, the remote transaction, verification) whatever the load."""
    lab: Lab = make_lab(3, apache=1)  # type: ignore[operator]
    inv = write_inventory(lab, tmp_path)
    env = cli_env(state_dir)
    first = subprocess.run(cli_argv("rotate", "-i", inv), env=env, capture_output=True, timeout=120)
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    rng = random.Random(SEED)
    killed = finished = left = landed = in_flight = 0
    problems: list[str] = []
    for n in range(KILLS):
        before = {h.name: site_state(h).current for h in lab.hosts}
        batch, delay = rng.randint(1, len(lab.hosts)), rng.uniform(0.0, 0.8)
        proc, events, reader = start_rotation(inv, env)
        try:
            deadline = time.monotonic() + 60
            while events.count("batch_started") < batch and proc.poll() is None:
                assert time.monotonic() < deadline, "the rotation did not start its batches"
                time.sleep(0.005)
            time.sleep(delay)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                killed += 1
                in_flight += any(transaction_running(h) for h in lab.hosts)
            else:
                finished += 1
        finally:
            proc.wait(timeout=30)
            reader.join(timeout=10)
        done_by_cli = events.count("task_done")
        for host in lab.hosts:
            wait_quiet(host)
            left += len(leftovers(host))
            if site_state(host).current != before[host.name]:
                landed += 1
            problems += [
                f"kill {n} (batch {batch} +{delay:.2f}s): {p}" for p in pairs_problems(host)
            ]
        landed -= done_by_cli  # rotations the controller saw finish before it died
    rerun = subprocess.run(cli_argv("rotate", "-i", inv), env=env, capture_output=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    for host in lab.hosts:
        problems += [f"after the re-run: {p}" for p in pairs_problems(host)]
    again = subprocess.run(
        cli_argv("rotate", "-i", inv, "--json"), env=env, capture_output=True, timeout=120
    )
    assert again.returncode == 0
    assert b'"changed": 0' in again.stdout.splitlines()[-1]
    broken = len({p.split(":")[0] for p in problems if p.startswith("kill")})
    figures.record(
        "interrupted runs (SIGKILL of `origin-agent rotate --force`, 3 hosts, one per batch)",
        f"kills: {killed} (plus {finished} runs that finished first), seed {SEED}; "
        f"{in_flight} kills hit a remote transaction in flight",
        f"survived: {killed + finished - broken} of {killed + finished} (every host consistent "
        f"after each); host rotations the remote script completed after the controller died: "
        f"{landed}",
        f"temporaries left by kills: {left}; the re-run converged, the next one changed nothing",
    )
    assert killed >= KILLS // 2, f"only {killed} runs were killed mid-way; the delays are off"
    assert not problems, "\n".join(problems)


def test_the_next_run_cleans_leftover_temporaries(
    make_lab: object, tmp_path: Path, state_dir: str
) -> None:
    """What an upload cut by a dying controller leaves (a payload directory holding a key) is
    removed by the next run, even one with nothing else to change."""
    lab: Lab = make_lab(2, apache=1)  # type: ignore[operator]
    inv = write_inventory(lab, tmp_path)
    env = cli_env(state_dir)
    first = subprocess.run(cli_argv("rotate", "-i", inv), env=env, capture_output=True, timeout=120)
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    for host in lab.hosts:
        payload = f"{CERT_ROOT}/{site_name(host)}/{TEMP}-payload"
        host.exec(
            ["sh", "-c", f"umask 077; mkdir -p {payload}/v && echo junk > {payload}/v/privkey.pem"],
            check=True,
        )
        assert leftovers(host)
    rerun = subprocess.run(cli_argv("rotate", "-i", inv), env=env, capture_output=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    assert {h.name: leftovers(h) for h in lab.hosts} == {h.name: [] for h in lab.hosts}
