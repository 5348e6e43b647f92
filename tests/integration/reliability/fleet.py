"""Driving and judging TLS rotations on a lab, from outside.

A rotation runs through the real engine: in process (:func:`run_engine`, with an optional
wrapper around each host's real connection) or as the real command line (:func:`cli_argv`).
It is judged the way an edge would see it: a TLS handshake gives the served leaf, compared
with the files under ``current/`` read through the host's own view of its filesystem.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import ssl
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from agent import transport
from agent.inventory import Host, connection_spec, load
from agent.inventory.model import ConnectionSpec
from agent.lab import Lab, LabHost
from agent.modules.tls import services
from agent.plan.parse import load_plan
from agent.report.jsonl import JsonReporter
from agent.runner.engine import Runner, RunOptions, RunResult
from agent.transport.base import Connection

CERT_ROOT = "/etc/ssl/origin-agent"
TXN_ROOT = "/var/lib/origin-agent/txn"
REPO = Path(__file__).resolve().parents[3]

PLAN = """\
- hosts: all
  tasks:
    - name: rotate
      tls_origin:
        force: "{{ force | default(false) }}"
        hsts: "{{ hsts | default(false) }}"
"""


def write_plan(directory: Path) -> str:
    path = directory / "rotate.yml"
    path.write_text(PLAN)
    return str(path)


def write_inventory(lab: Lab, directory: Path, **all_vars: Any) -> str:
    """The lab's inventory with extra ``all:`` vars (e.g. ``ansible_timeout``)."""
    data = yaml.safe_load(Path(lab.inventory_path).read_text())
    data["all"]["vars"].update(all_vars)
    path = directory / "inventory.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def site_name(host: LabHost) -> str:
    return f"{host.name}.lab.test"


def site_file(host: LabHost) -> str:
    base = (
        "/etc/nginx/sites-available" if host.server == "nginx" else "/etc/apache2/sites-available"
    )
    return f"{base}/{site_name(host)}.conf"


# -- judging from outside ----------------------------------------------------------------------
def served_leaf(host: LabHost, timeout: float = 3.0) -> bytes | None:
    """DER of the leaf served on the host's :443 for its site name (None: no TLS answer)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host.address, 443), timeout=timeout) as sock:
            with ctx.wrap_socket(sock, server_hostname=site_name(host)) as tls:
                return tls.getpeercert(binary_form=True)
    except OSError:
        return None


def sha256(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


def cert_pem_fingerprint(pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def spki_of_cert(der_or_pem: bytes) -> bytes:
    if der_or_pem.lstrip().startswith(b"-----"):
        cert = x509.load_pem_x509_certificate(der_or_pem)
    else:
        cert = x509.load_der_x509_certificate(der_or_pem)
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_of_key(pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def read(host: LabHost, path: str) -> bytes | None:
    try:
        return Path(host.path(path)).read_bytes()
    except OSError:
        return None


@dataclass(frozen=True)
class SiteState:
    """One host's site as seen from outside: served leaf, ``current`` on disk, site file."""

    served: str | None  # sha256 of the served leaf
    current: str | None  # version name
    current_cert: str | None  # sha256 of current/cert.pem's DER
    site_sha: str | None  # sha256 of the site file


def site_state(host: LabHost) -> SiteState:
    root = f"{CERT_ROOT}/{site_name(host)}"
    try:
        current: str | None = os.readlink(host.path(f"{root}/current"))
    except OSError:
        current = None
    cert = read(host, f"{root}/current/cert.pem")
    fingerprint = cert_pem_fingerprint(cert) if cert else None
    served = sha256(served_leaf(host))
    if fingerprint is not None and served != fingerprint:
        # a handshake can fail or meet an old worker for a moment (a reload, a loaded machine):
        # what the host serves is what it serves once that moment has passed
        served = wait_served(host, fingerprint, timeout=5.0)
    return SiteState(served, current, fingerprint, sha256(read(host, site_file(host))))


def wait_served(host: LabHost, fingerprint: str | None, timeout: float = 10.0) -> str | None:
    """Poll the handshake until it serves ``fingerprint`` (graceful reloads take a moment);
    returns what was served last."""
    deadline = time.monotonic() + timeout
    while True:
        served = sha256(served_leaf(host))
        if served == fingerprint or time.monotonic() > deadline:
            return served
        time.sleep(0.05)


def settle(host: LabHost) -> None:
    """Bring a host back to a steady state after a cell: server running, config reloaded."""
    if host.server_pid() is None:
        host.start_server()
    elif host.server == "nginx":
        host.exec(["nginx", "-s", "reload"])
    else:
        host.exec(["apache2ctl", "graceful"])
    deadline = time.monotonic() + 5
    while not host.server_settled() and time.monotonic() < deadline:
        time.sleep(0.02)


# -- running the engine in process ---------------------------------------------------------------
@dataclass(frozen=True)
class EngineRun:
    result: RunResult
    events: list[dict[str, Any]]
    elapsed: float

    def error(self, host: str) -> str:
        return self.result.host(host).error

    def ok(self, host: str) -> bool:
        h = self.result.host(host)
        return not h.failed and not h.unreachable and not h.not_run


Wrap = Callable[[Host, Connection], Connection]


def run_engine(
    inventory: str,
    plan: str,
    extra: Mapping[str, Any] | None = None,
    *,
    wrap: Wrap | None = None,
    state_dir: str | None = None,
) -> EngineRun:
    """One run of ``plan`` through the real runner and SSH transport; ``wrap`` may wrap each
    host's connection (a fault hook)."""
    services.configure(state_dir=state_dir)
    inv = load([inventory])
    specs: dict[str, ConnectionSpec] = {}

    def select(pattern: str) -> list[Host]:
        hosts = inv.select(pattern, None)
        for host in hosts:
            specs.setdefault(host.name, connection_spec(host))
        return hosts

    def connect(host: Host) -> Connection:
        conn = transport.connect(specs[host.name])
        return wrap(host, conn) if wrap else conn

    stream = io.StringIO()
    reporter = JsonReporter(stream)
    started = time.monotonic()
    result = Runner(
        load_plan(plan), select, connect, reporter, RunOptions(extra_vars=dict(extra or {}))
    ).run()
    reporter.close()
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    return EngineRun(result, events, time.monotonic() - started)


def cli_argv(*args: str) -> list[str]:
    """The real command line, as a child process runs it."""
    return [sys.executable, "-m", "agent", *args]


def cli_env(state_dir: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env["ORIGIN_AGENT_STATE_DIR"] = state_dir
    env.update(extra)
    return env
