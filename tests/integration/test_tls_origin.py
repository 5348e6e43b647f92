"""The TLS step on real lab origins (nginx and apache2): from plain HTTP to Full (strict), and
every failure ending with the previous certificate served and the site file as it was."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.cli import main
from agent.lab import Lab, LabHost
from agent.pki.issuers.base import REGISTRY, CertBundle, Issuer, IssueRequest
from agent.pki.issuers.localca import init_ca
from agent.pki.probe import probe
from tests.tlscerts import make_leaf

pytestmark = pytest.mark.integration

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ORIGIN_AGENT_STATE_DIR", str(tmp_path / "state"))
    yield


def name_of(host: LabHost) -> str:
    return f"{host.name}.lab.test"


def _served_once(host: LabHost) -> str | None:
    result = probe(host.address, 443, name_of(host), timeout=5)
    return hashlib.sha256(result.leaf_der).hexdigest() if result.leaf_der else None


def served(host: LabHost, settle: float = 5.0) -> str | None:
    """What the host serves once it is steady: the same answer five times in a row (a reload
    leaves old workers answering for a few milliseconds)."""
    deadline = time.monotonic() + settle
    last, streak = _served_once(host), 1
    while streak < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
        now = _served_once(host)
        streak = streak + 1 if now == last else 1
        last = now
    return last


def site_file(host: LabHost) -> str:
    d = "nginx" if host.server == "nginx" else "apache2"
    return f"/etc/{d}/sites-available/{name_of(host)}.conf"


def digest(host: LabHost, path: str) -> str:
    p = Path(host.path(path))
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "absent"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]], str]:
    capsys.readouterr()
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    return code, events, captured.err


def task_results(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        e["host"]: e
        for e in events
        if e.get("event") == "task_done" and e.get("module") == "tls_origin"
    }


def plan_file(tmp_path: Path, args: dict[str, Any], name: str = "plan.yml") -> str:
    path = tmp_path / name
    path.write_text(
        yaml.safe_dump(
            [{"name": "tls", "hosts": "all", "tasks": [{"name": "tls step", "tls_origin": args}]}]
        )
    )
    return str(path)


def bootstrapped(lab: Lab, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    code, _, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    assert code == 0, err
    fps = {h.name: served(h) for h in lab.hosts}
    assert all(fps.values())
    return fps  # type: ignore[return-value]


def test_http_only_origins_end_full_strict_and_a_rerun_changes_nothing(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(2, apache=1)
    capsys.readouterr()
    assert main(["status", "-i", lab.inventory_path, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {r["host"]: r["mode"] for r in rows} == {h.name: "flexible" for h in lab.hosts}
    code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    assert code == 0, err
    assert {h: r["status"] for h, r in task_results(events).items()} == {
        h.name: "changed" for h in lab.hosts
    }
    capsys.readouterr()
    assert main(["status", "-i", lab.inventory_path, "--json", "--require-mode", "strict"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {r["host"]: r["mode"] for r in rows} == {h.name: "strict" for h in lab.hosts}
    code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    assert code == 0, err
    assert {r["status"] for r in task_results(events).values()} == {"ok"}
    assert events[-1]["event"] == "run_finished"
    assert all(h["changed"] == 0 for h in events[-1]["hosts"])


def _broken_template(tmp_path: Path, server: str) -> str:
    text = (TEMPLATES / server / "site.conf.j2").read_text()
    if server == "nginx":
        text = text.replace(
            "    ssl_certificate {{ fullchain }};",
            "    bogus_directive on;\n    ssl_certificate {{ fullchain }};",
        )
    else:
        text = text.replace("SSLEngine on", "SSLEngine on\n    BogusDirective on")
    assert "ogus" in text
    path = tmp_path / f"broken-{server}.conf.j2"
    path.write_text(text)
    return str(path)


def test_a_template_failing_the_config_test_keeps_the_previous_certificate_and_site(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lab = make_lab(2, apache=1)
    fps = bootstrapped(lab, capsys)
    sites = {h.name: digest(h, site_file(h)) for h in lab.hosts}
    for host in lab.hosts:
        plan = plan_file(
            tmp_path,
            {
                "force": True,
                "server": host.server,
                "site_template": _broken_template(tmp_path, host.server),
            },
            f"{host.name}.yml",
        )
        code, events, err = run(capsys, "run", plan, "-i", lab.inventory_path, "--limit", host.name)
        assert code == 1
        result = task_results(events)[host.name]
        assert result["status"] == "failed"
        assert (
            "config test failed" in result["msg"]
            and "previous certificate and site restored" in result["msg"]
        )
        assert "\n" not in result["msg"]
        assert served(host) == fps[host.name]
        assert digest(host, site_file(host)) == sites[host.name]


def test_a_failed_verification_rolls_back_to_the_previous_certificate(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lab = make_lab(2, apache=1)
    fps = bootstrapped(lab, capsys)
    sites = {h.name: digest(h, site_file(h)) for h in lab.hosts}
    other = init_ca(tmp_path / "other-ca")
    plan = plan_file(
        tmp_path,
        {
            "force": True,
            "issuer": {"backend": "localca", "dir": lab.ca_dir, "trust": str(other.root_cert)},
        },
    )
    code, events, err = run(capsys, "run", plan, "-i", lab.inventory_path)
    assert code == 1
    for host in lab.hosts:
        result = task_results(events)[host.name]
        assert result["status"] == "failed"
        assert (
            "verification failed" in result["msg"]
            and "previous certificate restored" in result["msg"]
        )
        assert served(host) == fps[host.name]
        assert digest(host, site_file(host)) == sites[host.name]


def test_a_server_refusing_to_reload_keeps_the_previous_certificate(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lab = make_lab(2, apache=1)
    fps = bootstrapped(lab, capsys)
    for host in lab.hosts:
        pidfile = "/run/nginx.pid" if host.server == "nginx" else "/run/apache2/apache2.pid"
        real = Path(host.path(pidfile)).read_text()
        site = digest(host, site_file(host))
        Path(host.path(pidfile)).write_text(
            "999999\n"
        )  # reload signals nobody; start finds the ports taken
        try:
            code, events, err = run(
                capsys, "rotate", "-i", lab.inventory_path, host.name, "--force"
            )
        finally:
            Path(host.path(pidfile)).write_text(real)
        assert code == 1
        result = task_results(events)[host.name]
        assert "reload failed" in result["msg"], result["msg"]
        assert served(host) == fps[host.name]
        assert digest(host, site_file(host)) == site


class WrongKeyIssuer(Issuer):
    """A CA that answers with a certificate for some other key (a real Issuer, for tests)."""

    name = "wrongkey"

    @classmethod
    def from_config(cls, config: Any, *, state: Any = None) -> WrongKeyIssuer:
        return cls()

    def issue(self, request: IssueRequest) -> CertBundle:
        leaf = make_leaf(
            list(request.names), start=datetime.now(UTC) - timedelta(minutes=1), days=30
        )
        return CertBundle(leaf.cert_pem, backend=self.name)


def test_a_certificate_for_another_key_is_rejected_before_anything_is_written(
    make_lab: Callable[..., Lab],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab = make_lab(1, apache=1)
    host = lab.hosts[0]
    fps = bootstrapped(lab, capsys)
    versions = sorted(Path(host.path(f"/etc/ssl/origin-agent/{name_of(host)}")).iterdir())
    monkeypatch.setitem(REGISTRY, "wrongkey", lambda: WrongKeyIssuer)
    plan = plan_file(tmp_path, {"force": True, "issuer": {"backend": "wrongkey"}})
    code, events, err = run(capsys, "run", plan, "-i", lab.inventory_path)
    assert code == 1
    msg = task_results(events)[host.name]["msg"]
    assert "issuer wrongkey" in msg and "key" in msg
    assert served(host) == fps[host.name]
    assert sorted(Path(host.path(f"/etc/ssl/origin-agent/{name_of(host)}")).iterdir()) == versions


def test_apache_killed_by_a_mismatched_key_is_brought_back_on_the_previous_certificate(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lab = make_lab(1, apache=1)
    host = lab.hosts[0]
    fps = bootstrapped(lab, capsys)
    site = digest(host, site_file(host))
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    host.exec(
        ["sh", "-c", "umask 077; mkdir -p /etc/ssl/private; cat > /etc/ssl/private/other.key"],
        input=other,
        check=True,
    )
    template = (TEMPLATES / "apache" / "site.conf.j2").read_text()
    template = template.replace("{{ privkey }}", "/etc/ssl/private/other.key")
    assert "/etc/ssl/private/other.key" in template
    path = tmp_path / "mismatch.conf.j2"
    path.write_text(template)
    assert host.exec(["apache2ctl", "-t"]).returncode == 0
    plan = plan_file(tmp_path, {"force": True, "site_template": str(path)})
    code, events, err = run(capsys, "run", plan, "-i", lab.inventory_path)
    assert code == 1
    msg = task_results(events)[host.name]["msg"]
    assert "verification failed" in msg and "previous certificate restored" in msg, msg
    debug = host.exec(
        [
            "sh",
            "-c",
            "grep -v AH01882 /var/log/apache2/error.log | tail -12 | cut -c1-60,100-260; ls -la /run/apache2; ls /proc/*/exe -l 2>/dev/null | grep -c apache2",
        ]
    ).stdout.decode()
    assert host.server_pid() is not None, debug
    assert served(host) == fps[host.name]
    assert digest(host, site_file(host)) == site


def test_check_mode_changes_nothing_and_says_what_would_change(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(1, apache=1)
    host = lab.hosts[0]
    code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path, "--check")
    assert code == 0, err
    changes = task_results(events)[host.name]["changes"]
    assert any("privkey.pem (secret file) mode=0600" in c for c in changes)
    assert any(c.startswith("link") and c.endswith("current -> NEW-VERSION") for c in changes)
    assert served(host) is None
    assert not Path(host.path("/etc/ssl/origin-agent")).exists()
    assert digest(host, site_file(host)) == "absent"


def test_the_diff_never_shows_the_private_key(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(1)
    code, events, _ = run(capsys, "bootstrap", "-i", lab.inventory_path, "--diff")
    assert code == 0
    host = lab.hosts[0]
    key = Path(host.path(f"/etc/ssl/origin-agent/{name_of(host)}/current/privkey.pem")).read_text()
    body = "".join(key.strip().splitlines()[1:-1])
    text = json.dumps(events)
    assert body[:40] not in text and body[-40:] not in text
    diff = task_results(events)[host.name]["diff"]
    assert "ssl_certificate" in diff and "PRIVATE KEY" not in diff


def test_versions_are_kept_for_rollback_and_pruned(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(1)
    host = lab.hosts[0]
    bootstrapped(lab, capsys)
    for _ in range(4):
        code, _, err = run(capsys, "rotate", "-i", lab.inventory_path, "--force")
        assert code == 0, err
    root = Path(host.path(f"/etc/ssl/origin-agent/{name_of(host)}"))
    versions = sorted(p.name for p in root.iterdir() if p.name[:1].isdigit())
    assert len(versions) == 3
    assert os.readlink(root / "current") == versions[-1]
    modes = {oct(p.stat().st_mode & 0o777) for p in root.glob("*/privkey.pem")}
    assert modes == {"0o600"}
    assert not list(root.glob(".origin-agent-tmp-*"))


def test_rotation_stops_at_the_first_failing_batch(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.lab import faults

    lab = make_lab(6)
    fps = bootstrapped(lab, capsys)
    victim = lab.hosts[1]  # the second host: batch 2 after the canary
    faults.get("web-config-broken").inject(victim)
    try:
        code, events, err = run(capsys, "rotate", "-i", lab.inventory_path, "--force")
    finally:
        faults.get("web-config-broken").undo(victim)
    assert code == 1
    summary = next(line for line in err.splitlines() if line.startswith("rotation: "))
    assert "1 failed" in summary and "0 unreachable" in summary
    batches = [e["hosts"] for e in events if e.get("event") == "batch_started"]
    assert batches[0] == [lab.hosts[0].name] and victim.name in batches[1]
    done = {h for b in batches[:2] for h in b}
    recap = {h["host"]: h for h in events[-1]["hosts"]}
    assert recap[victim.name]["failed"] == 1
    assert "config test failed" in recap[victim.name]["error"]
    assert served(lab.hosts[0]) != fps[lab.hosts[0].name]  # the canary rotated
    assert served(victim) == fps[victim.name]
    for host in lab.hosts:
        if host.name not in done:
            assert recap[host.name]["not_run"] is True
            assert served(host) == fps[host.name]
    rotated = sum(1 for h in done if h != victim.name)
    assert f"{rotated} rotated" in summary and f"{len(lab.hosts) - len(done)} not run" in summary
    capsys.readouterr()
    assert main(["status", "-i", lab.inventory_path, "--json", "--require-mode", "strict"]) == 0


def test_status_json_matches_what_openssl_sees(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess

    lab = make_lab(2, apache=1)
    bootstrapped(lab, capsys)
    capsys.readouterr()
    assert main(["status", "-i", lab.inventory_path, "--json"]) == 0
    rows = {r["host"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    for host in lab.hosts:
        pem = subprocess.run(
            [
                "openssl",
                "s_client",
                "-connect",
                f"{host.address}:443",
                "-servername",
                name_of(host),
            ],
            input=b"",
            capture_output=True,
            timeout=20,
        ).stdout
        text = subprocess.run(
            ["openssl", "x509", "-noout", "-serial", "-enddate", "-fingerprint", "-sha256"],
            input=pem,
            capture_output=True,
            timeout=20,
        ).stdout.decode()
        fields = dict(line.split("=", 1) for line in text.strip().splitlines())
        row = rows[host.name]
        assert row["serial"] == fields["serial"].lower().lstrip("0")
        assert row["fingerprint"] == fields["sha256 Fingerprint"].replace(":", "").lower()
        not_after = datetime.strptime(fields["notAfter"], "%b %d %H:%M:%S %Y %Z").replace(
            tzinfo=UTC
        )
        assert datetime.fromisoformat(row["not_after"]) == not_after
        assert row["mode"] == "strict"


def test_every_bundled_plan_runs_on_the_lab(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(2, apache=1)
    plans = sorted((Path(__file__).resolve().parents[2] / "plans").glob("*.yml"))
    assert {p.name for p in plans} >= {"bootstrap.yml", "rotate.yml"}
    for plan in sorted(plans, key=lambda p: p.name != "bootstrap.yml"):
        code, events, err = run(
            capsys, "run", str(plan), "-i", lab.inventory_path, "-e", "force=true"
        )
        assert code == 0, f"{plan.name}: {err}"
        assert events[-1]["event"] == "run_finished"


def test_the_parts_plan_reloads_each_host_once_however_many_tasks_changed(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(2, apache=1)
    plan = str(Path(__file__).resolve().parents[2] / "plans" / "rotate-in-parts.yml")
    code, events, err = run(capsys, "run", plan, "-i", lab.inventory_path)
    assert code == 0, err
    for host in lab.hosts:
        mine = [e for e in events if e.get("event") == "task_done" and e["host"] == host.name]
        changed_tasks = [e for e in mine if not e["handler"] and e["status"] == "changed"]
        reloads = [e for e in mine if e["handler"] and e["module"] == "reload"]
        verifies = [e for e in mine if e["handler"] and e["module"] == "verify"]
        assert len(changed_tasks) == 2
        assert len(reloads) == 1 and reloads[0]["status"] == "changed"
        assert len(verifies) == 1 and verifies[0]["status"] == "ok"
    fps = {h.name: served(h) for h in lab.hosts}
    code, events, err = run(capsys, "run", plan, "-i", lab.inventory_path, "-e", "force=true")
    assert code == 0, err
    assert not [
        e
        for e in events
        if e.get("event") == "task_done" and e["module"] == "tls_site" and e["status"] == "changed"
    ]
    assert all(served(h) != fps[h.name] for h in lab.hosts)


def test_a_host_with_a_changed_host_key_is_refused_and_the_others_finish(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.lab import faults

    lab = make_lab(3)
    victim = lab.hosts[1]
    faults.get("host-key-changed").inject(victim)
    try:
        code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    finally:
        faults.get("host-key-changed").undo(victim)
    assert code == 3
    recap = {h["host"]: h for h in events[-1]["hosts"]}
    assert recap[victim.name]["unreachable"] is True
    assert "HOST KEY CHANGED" in recap[victim.name]["error"]
    assert served(victim) is None
    for host in lab.hosts:
        if host is not victim:
            assert recap[host.name]["failed"] == 0 and served(host) is not None


def test_rotation_revokes_the_replaced_certificate_at_the_local_ca(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(1)
    host = lab.hosts[0]
    bootstrapped(lab, capsys)
    capsys.readouterr()
    assert main(["status", "-i", lab.inventory_path, "--json"]) == 0
    old_serial = json.loads(capsys.readouterr().out)["rows"][0]["serial"]
    code, _, err = run(capsys, "rotate", "-i", lab.inventory_path, "--force")
    assert code == 0, err
    revoked = (Path(lab.ca_dir) / "revoked.txt").read_text().split()
    assert old_serial.lstrip("0") in [s.lower().lstrip("0") for s in revoked]
    code, _, err = run(capsys, "rotate", "-i", lab.inventory_path, "--force", "--no-revoke")
    assert code == 0, err
    assert len((Path(lab.ca_dir) / "revoked.txt").read_text().splitlines()) == 1
    assert served(host) is not None


def test_bootstrap_installs_the_web_server_on_a_bare_origin(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(1, bare=1)
    host = lab.hosts[0]
    assert host.exec(["test", "-e", "/usr/sbin/nginx"]).returncode == 1
    code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    assert code == 0, err + json.dumps(events[-3:])[-2000:]
    assert host.exec(["test", "-x", "/usr/sbin/nginx"]).returncode == 0
    assert served(host) is not None
    code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    assert code == 0 and all(h["changed"] == 0 for h in events[-1]["hosts"])


def test_rotation_with_cfssl_revokes_the_replaced_certificate_in_its_database(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import sqlite3

    from cryptography import x509

    from tests.integration.cas import CfsslServer

    lab = make_lab(1)
    host = lab.hosts[0]
    cfssl = CfsslServer(tmp_path / "cfssl")
    try:
        (tmp_path / "root.pem").write_text(cfssl.root.cert_pem)
        data = yaml.safe_load(Path(lab.inventory_path).read_text())
        data["all"]["vars"]["issuer"] = {
            "backend": "cfssl",
            "url": cfssl.url,
            "profile": "server",
            "revoke": True,
            "trust": str(tmp_path / "root.pem"),
            "retries": 0,
        }
        inv = tmp_path / "inventory.yml"
        inv.write_text(yaml.safe_dump(data, sort_keys=False))
        for argv in (("bootstrap", "-i", str(inv)), ("rotate", "-i", str(inv), "--force")):
            code, _, err = run(capsys, *argv)
            assert code == 0, err
        with sqlite3.connect(cfssl.db) as db:
            rows = db.execute("SELECT pem, status, reason FROM certificates").fetchall()
    finally:
        cfssl.stop()

    def fingerprint(pem: str) -> str:
        cert = x509.load_pem_x509_certificate(pem.encode())
        return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    by_status = {status: (fingerprint(pem), reason) for pem, status, reason in rows}
    assert len(rows) == 2 and set(by_status) == {"good", "revoked"}
    assert by_status["good"][0] == served(host)  # the new one is served, the old one revoked
    assert by_status["revoked"][1] == 4  # superseded
