"""Every lab fault, on one host at a time, at the worst moment for it, during a rotation of a
mixed fleet (2 nginx + 1 apache): no fault leaves an origin worse than before.

For every cell the faulty host ends either on the new certificate, served and reported ok,
or back on its previous certificate, served, with its site file byte-identical, reported
failed in one line naming the host; the other hosts rotate normally; the exit code says
failure exactly when the faulty host did not rotate; and a re-run after the fault is undone
converges. The matrix is printed at the end of the test session.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from agent.inventory import Host
from agent.lab import Lab, LabHost, faults
from agent.transport.base import Connection
from tests.emulators.cloudflare import CloudflareEmulator
from tests.integration.cas import Pebble, free_port
from tests.integration.reliability import figures
from tests.integration.reliability.fleet import (
    EngineRun,
    SiteState,
    run_engine,
    settle,
    site_state,
    wait_served,
    write_inventory,
    write_plan,
)
from tests.integration.reliability.hooks import MOMENTS, HookedConnection

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONNECT_TIMEOUT = 2.0


@dataclass(frozen=True)
class Cell:
    fault: str
    moment: str
    host: str
    outcome: str  # "new" | "previous" | "BROKEN: ..."
    seconds: float
    message: str


def judge(host: LabHost, before: SiteState, run: EngineRun) -> str:
    """The host's outcome, judged from outside; a string starting with BROKEN on violation."""
    disk = site_state(host)
    served = wait_served(host, disk.current_cert)
    now = site_state(host)
    reported_ok = run.ok(host.name)
    error = run.error(host.name)
    if served != now.current_cert:
        return f"BROKEN: serves {str(served)[:12]} but current/ holds {str(now.current_cert)[:12]}"
    if now.current != before.current and served != before.served:
        if not reported_ok:
            return f"BROKEN: on the new certificate but reported failed: {error}"
        if now.site_sha == before.site_sha:
            return "BROKEN: new certificate but the site file was not updated"
        return "new"
    if now.current == before.current and served == before.served:
        if now.site_sha != before.site_sha:
            return "BROKEN: previous certificate but the site file changed"
        if reported_ok:
            return "BROKEN: nothing changed but the run reported success"
        return "previous"
    return f"BROKEN: current {now.current} (was {before.current}), serves {str(served)[:12]}"


def message_problem(host: LabHost, run: EngineRun) -> str | None:
    """A failed host's message must be one line naming the host."""
    error = run.error(host.name)
    if not error or "\n" in error or host.name not in error:
        return f"{host.name}: failure message is not one line naming the host: {error!r}"
    return None


def run_cell(
    lab: Lab,
    inv: str,
    plan: str,
    state_dir: str,
    fault_name: str,
    moment: str,
    target: LabHost,
    hsts: bool,
) -> tuple[Cell, list[str]]:
    fault = faults.get(fault_name)
    problems: list[str] = []
    before = {h.name: site_state(h) for h in lab.hosts}
    injected: list[bool] = []

    def inject() -> None:
        fault.inject(target)
        injected.append(True)

    hooks: list[HookedConnection] = []

    def wrap(host: Host, conn: Connection) -> Connection:
        if host.name != target.name:
            return conn
        hooked = HookedConnection(conn, target, moment, inject)
        hooks.append(hooked)
        return hooked

    started = time.monotonic()
    if moment == "before-connect":
        inject()
    try:
        run = run_engine(
            inv,
            plan,
            {"force": True, "hsts": hsts},
            state_dir=state_dir,
            wrap=None if moment == "before-connect" else wrap,
        )
        elapsed = time.monotonic() - started
        outcome = judge(target, before[target.name], run)  # judged with the fault still in place
        others = [h for h in lab.hosts if h is not target]
        for other in others:
            verdict = judge(other, before[other.name], run)
            if verdict != "new":
                problems.append(
                    f"{other.name} (not faulty) ended {verdict}: {run.error(other.name)}"
                )
        if not injected:
            problems.append("the fault was never injected")
        for hook in hooks:
            if hook.inject_error is not None:
                problems.append(f"injecting failed: {hook.inject_error}")
        expected_code = (
            0
            if outcome == "new"
            else (
                3 if moment == "before-connect" and run.result.host(target.name).unreachable else 1
            )
        )
        if run.result.exit_code != expected_code:
            problems.append(f"exit code {run.result.exit_code}, expected {expected_code}")
    finally:
        if injected:
            fault.undo(target)
    for host in lab.hosts:
        settle(host)
    again = run_engine(inv, plan, {"hsts": hsts}, state_dir=state_dir)
    if again.result.exit_code != 0:
        problems.append(
            "re-run after undo did not converge: "
            + "; ".join(h.error for h in again.result.hosts if h.error)
        )
    for host in lab.hosts:
        state = site_state(host)
        if wait_served(host, state.current_cert) != state.current_cert:
            problems.append(f"{host.name} does not serve current/ after the re-run")
    if outcome.startswith("BROKEN"):
        problems.append(f"{target.name}: {outcome}")
    elif outcome == "previous" and message_problem(target, run):
        problems.append(str(message_problem(target, run)))
    message = run.error(target.name)
    return Cell(fault_name, moment, target.name, outcome, elapsed, message), problems


def render(cells: list[Cell]) -> list[str]:
    lines = [f"{'fault':<18} {'moment':<15} {'host':<10} {'outcome':<9} {'secs':>5}  message"]
    for c in cells:
        lines.append(
            f"{c.fault:<18} {c.moment:<15} {c.host:<10} {c.outcome[:9]:<9} {c.seconds:5.1f}  "
            f"{c.message[:110]}"
        )
    survived = sum(1 for c in cells if not c.outcome.startswith("BROKEN"))
    rotated = sum(1 for c in cells if c.outcome == "new")
    lines.append(
        f"cells: {len(cells)} tried, {survived} survived ({rotated} rotated anyway, "
        f"{survived - rotated} back on the previous certificate), "
        f"{len(cells) - survived} broken"
    )
    return lines


def test_every_fault_at_its_worst_moment_leaves_the_fleet_no_worse(
    make_lab: object, tmp_path: Path, state_dir: str
) -> None:
    lab: Lab = make_lab(3, apache=1)  # type: ignore[operator]
    inv = write_inventory(lab, tmp_path, ansible_timeout=CONNECT_TIMEOUT)
    plan = write_plan(tmp_path)
    first = run_engine(inv, plan, {"hsts": False}, state_dir=state_dir)
    assert first.result.exit_code == 0, [h.error for h in first.result.hosts]
    cells: list[Cell] = []
    problems: list[str] = []
    hsts = False
    for fi, fault_name in enumerate(faults.FAULTS):
        for mi, moment in enumerate(MOMENTS):
            target = lab.hosts[(fi + mi) % len(lab.hosts)]
            hsts = not hsts  # every rotation also rewrites the site file
            cell, found = run_cell(lab, inv, plan, state_dir, fault_name, moment, target, hsts)
            cells.append(cell)
            problems += [f"{fault_name} @ {moment}: {p}" for p in found]
    figures.record("fault matrix (fault x moment -> outcome on the faulty host)", *render(cells))
    assert not problems, "\n".join(problems)
    assert {c.fault for c in cells} == set(faults.FAULTS)
    assert any(c.outcome == "previous" for c in cells)


def host_issuers(lab: Lab, directory: Path, issuers: dict[str, dict[str, object]]) -> str:
    """The lab's inventory with an ``issuer`` host var for some hosts."""
    data = yaml.safe_load(Path(lab.inventory_path).read_text())
    for group in data["all"]["children"].values():
        for name, hostvars in group["hosts"].items():
            if name in issuers:
                hostvars["issuer"] = issuers[name]
    path = directory / "inventory-issuers.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def test_ca_side_faults_fail_the_host_before_its_origin_changes(
    make_lab: object, tmp_path: Path, state_dir: str
) -> None:
    """The challenge path answering 403 (ACME), a CA that cannot be reached (cfssl) and a CA
    answering garbage (Cloudflare Origin CA): the host fails in one line, untouched."""
    lab: Lab = make_lab(3, apache=1)  # type: ignore[operator]
    acme_host, cfssl_host, cf_host = lab.hosts
    plan = write_plan(tmp_path)
    first = run_engine(lab.inventory_path, plan, {"hsts": False}, state_dir=state_dir)
    assert first.result.exit_code == 0
    pebble = Pebble(tmp_path / "pebble", acme_host.address, 80, env={"PEBBLE_AUTHZREUSE": "0"})
    cf = CloudflareEmulator(zones={secrets.token_hex(16): "lab.test"}, tls=False).start()
    try:
        token = tmp_path / "cf-token"
        token.write_text(cf.token)
        token.chmod(0o600)
        acme = {
            "backend": "acme",
            "directory": pebble.directory,
            "ca_bundle": str(pebble.tls_ca),
            "email": "ops@lab.test",
            "timeout": 30,
            "retries": 0,
            "trust": str(tmp_path / "pebble-root.pem"),
        }
        cloudflare = {
            "backend": "cloudflare",
            "base_url": cf.base_url,
            "token_file": str(token),
            "retries": 0,
            "trust": [str(tmp_path / f"cf-{kind}-root.pem") for kind in ("ecc", "rsa")],
        }
        # Full (strict) is asked of CA-backed issuers: the test CAs' roots are named as trust
        (tmp_path / "pebble-root.pem").write_text(pebble.root_pem())
        for kind in ("ecc", "rsa"):
            (tmp_path / f"cf-{kind}-root.pem").write_text(cf.root_pem(kind))
        unreachable = {"backend": "cfssl", "url": f"http://127.0.0.1:{free_port()}", "retries": 0}
        inv = host_issuers(lab, tmp_path, {acme_host.name: acme, cf_host.name: cloudflare})
        # the ACME path works when nothing is wrong: http-01 through the origin's own site
        ok = run_engine(inv, plan, {"hsts": True}, state_dir=state_dir)
        assert ok.result.exit_code == 0, [h.error for h in ok.result.hosts]
        cells: list[Cell] = []
        problems: list[str] = []
        hsts = True
        for fault, target in (
            ("acme-forbidden", acme_host),
            ("ca-unreachable", cfssl_host),
            ("ca-garbage", cf_host),
        ):
            hsts = not hsts
            issuers = {acme_host.name: acme, cf_host.name: cloudflare}
            if fault == "ca-unreachable":
                issuers[cfssl_host.name] = unreachable
            inv = host_issuers(lab, tmp_path, issuers)
            before = {h.name: site_state(h) for h in lab.hosts}
            started = time.monotonic()
            if fault == "acme-forbidden":
                faults.get(fault).inject(target)
            elif fault == "ca-garbage":
                cf.fail_next(200, b"<html>garbage</html>", count=20, content_type="text/html")
            try:
                run = run_engine(inv, plan, {"force": True, "hsts": hsts}, state_dir=state_dir)
            finally:
                if fault == "acme-forbidden":
                    faults.get(fault).undo(target)
                cf.clear_failures()
            outcome = judge(target, before[target.name], run)
            cells.append(
                Cell(
                    fault,
                    "issue",
                    target.name,
                    outcome,
                    time.monotonic() - started,
                    run.error(target.name),
                )
            )
            if outcome != "previous":
                problems.append(f"{fault}: {target.name} ended {outcome}")
            elif message_problem(target, run):
                problems.append(f"{fault}: {message_problem(target, run)}")
            for other in lab.hosts:
                verdict = "new" if other is target else judge(other, before[other.name], run)
                if verdict != "new":
                    problems.append(f"{fault}: {other.name} (not faulty) ended {verdict}")
            if run.result.exit_code != 1:
                problems.append(f"{fault}: exit code {run.result.exit_code}")
            working = host_issuers(lab, tmp_path, {acme_host.name: acme, cf_host.name: cloudflare})
            again = run_engine(working, plan, {"hsts": hsts}, state_dir=state_dir)
            if again.result.exit_code != 0:
                problems.append(
                    f"{fault}: the re-run did not converge: "
                    + "; ".join(h.error for h in again.result.hosts if h.error)
                )
    finally:
        cf.stop()
        pebble.stop()
    figures.record("fault matrix, CA side (fault at issuance -> outcome)", *render(cells))
    assert not problems, "\n".join(problems)
