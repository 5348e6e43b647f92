"""The origin transaction on real lab hosts: switch, failure undo, rollback after verify."""

from __future__ import annotations

import socket
import ssl
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from agent.lab import Lab, LabHost
from agent.modules.tls import txn
from agent.transport.changes import RunCommand, SwapSymlink, WriteFile
from tests.tlscerts import make_leaf

pytestmark = pytest.mark.integration

NGINX = txn.server_commands(
    ["nginx", "-t"],
    ["nginx", "-s", "reload"],
    ["systemctl", "reload", "nginx"],
    ["nginx"],
    ["systemctl", "start", "nginx"],
)
APACHE = txn.server_commands(
    ["apache2ctl", "-t"],
    ["apache2ctl", "graceful"],
    ["systemctl", "reload", "apache2"],
    ["apache2ctl", "start"],
    ["systemctl", "start", "apache2"],
)


def _cert(name: str) -> tuple[bytes, bytes]:
    leaf = make_leaf([name], start=datetime.now(UTC) - timedelta(minutes=5), days=30)
    return leaf.key_pem.encode(), leaf.cert_pem.encode()


def _site(host: LabHost, name: str, broken: bool = False) -> tuple[str, bytes]:
    root = f"/etc/ssl/origin-agent/{name}/current"
    if host.server == "nginx":
        text = (
            f"server {{\n listen {host.address}:443 ssl;\n server_name {name};\n"
            f" ssl_certificate {root}/fullchain.pem;\n ssl_certificate_key {root}/privkey.pem;\n"
            f"{' bogus_directive on;' if broken else ''}\n}}\n"
        )
        return f"/etc/nginx/sites-available/{name}.conf", text.encode()
    text = (
        f"<VirtualHost {host.address}:443>\n ServerName {name}\n SSLEngine on\n"
        f" SSLCertificateFile {root}/fullchain.pem\n SSLCertificateKeyFile {root}/privkey.pem\n"
        f"{' BogusDirective on' if broken else ''}\n</VirtualHost>\n"
    )
    return f"/etc/apache2/sites-available/{name}.conf", text.encode()


def _transaction(
    host: LabHost, name: str, version: str, broken: bool = False
) -> tuple[txn.Transaction, bytes]:
    key_pem, cert_pem = _cert(name)
    site_path, site = _site(host, name, broken)
    enabled = site_path.replace("sites-available", "sites-enabled")
    commands: tuple[RunCommand, ...] = ()
    if host.server == "apache":
        commands = (RunCommand(("a2enmod", "-q", "ssl"), unless=(("a2query", "-q", "-m", "ssl"),)),)
    t = txn.Transaction(
        name=name,
        server=NGINX if host.server == "nginx" else APACHE,
        version=version,
        version_files=(
            WriteFile("privkey.pem", key_pem, 0o600),
            WriteFile("cert.pem", cert_pem),
            WriteFile("chain.pem", b""),
            WriteFile("fullchain.pem", cert_pem),
        ),
        files=(WriteFile(site_path, site),),
        links=(SwapSymlink(enabled, site_path),),
        commands=commands,
    )
    return t, cert_pem


def _apply(host: LabHost, t: txn.Transaction) -> txn.Outcome:
    result = host.exec(txn.shell_argv(txn.apply_script(t)), input=txn.payload(t))
    assert result.returncode == 0, result.stderr
    return txn.parse_outcome(result.stdout.decode())


def _served(
    host: LabHost, name: str, expect: bytes | None = None, wait: float = 10
) -> bytes | None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + wait
    seen = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host.address, 443), timeout=3) as sock:
                with ctx.wrap_socket(sock, server_hostname=name) as tls:
                    der = tls.getpeercert(binary_form=True)
                    seen = ssl.DER_cert_to_PEM_cert(der).encode() if der else None
        except OSError:
            seen = None
        if expect is None or (seen and _same(seen, expect)):
            return seen
        time.sleep(0.05)
    return seen


def _same(a: bytes, b: bytes) -> bool:
    return x509.load_pem_x509_certificate(a) == x509.load_pem_x509_certificate(b)


def _snapshot(host: LabHost, paths: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in paths:
        r = host.exec(["sh", "-c", f"test -e {p} && sha256sum < {p} || echo absent"])
        out[p] = r.stdout.decode().strip()
    return out


@pytest.mark.parametrize("index", [0, 3])
def test_a_transaction_switches_key_and_certificate_together_and_rolls_back(
    lab: Lab, index: int
) -> None:
    host = lab.hosts[index]
    name = f"txn{index}.lab.test"
    first, cert1 = _transaction(host, name, "20260101T000000Z-aaaa")
    outcome = _apply(host, first)
    assert outcome.ok, outcome
    assert _served(host, name, cert1) and _same(_served(host, name, cert1) or b"", cert1)
    mode = host.exec(["stat", "-c", "%a", f"/etc/ssl/origin-agent/{name}/current/privkey.pem"])
    assert mode.stdout.decode().strip() == "600"

    second, cert2 = _transaction(host, name, "20260102T000000Z-bbbb")
    outcome = _apply(host, second)
    assert outcome.ok and outcome.detail == ("20260102T000000Z-bbbb", "20260101T000000Z-aaaa")
    assert _same(_served(host, name, cert2) or b"", cert2)

    undo = host.exec(txn.shell_argv(txn.rollback_script(name, second.server)))
    assert txn.parse_outcome(undo.stdout.decode()).ok, undo.stdout
    assert _same(_served(host, name, cert1) or b"", cert1)
    link = host.exec(["readlink", f"/etc/ssl/origin-agent/{name}/current"]).stdout.decode().strip()
    assert link == "20260101T000000Z-aaaa"


@pytest.mark.parametrize("index", [1, 4])
def test_a_failing_config_test_restores_everything_byte_identical(lab: Lab, index: int) -> None:
    host = lab.hosts[index]
    name = f"bad{index}.lab.test"
    good, cert1 = _transaction(host, name, "20260101T000000Z-cccc")
    assert _apply(host, good).ok
    site_path = good.files[0].path
    watched = [
        site_path,
        site_path.replace("sites-available", "sites-enabled"),
        f"/etc/ssl/origin-agent/{name}/current/fullchain.pem",
    ]
    before = _snapshot(host, watched)
    bad, _ = _transaction(host, name, "20260102T000000Z-dddd", broken=True)
    outcome = _apply(host, bad)
    assert outcome.status == "test_failed"
    assert "ogus" in outcome.message
    assert _snapshot(host, watched) == before
    assert (
        host.exec(["test", "-e", f"/etc/ssl/origin-agent/{name}/20260102T000000Z-dddd"]).returncode
        == 1
    )
    assert _same(_served(host, name, cert1) or b"", cert1)


def test_a_read_only_certificate_directory_changes_nothing(make_lab) -> None:  # type: ignore[no-untyped-def]
    from agent.lab import faults

    small = make_lab(1)
    host = small.hosts[0]
    name = "ro.lab.test"
    faults.cert_dir_readonly(host)
    try:
        t, _ = _transaction(host, name, "20260101T000000Z-eeee")
        outcome = _apply(host, t)
        assert outcome.status == "write_failed"
        assert "Read-only" in outcome.message
        assert host.exec(["test", "-e", t.files[0].path]).returncode == 1
    finally:
        faults.cert_dir_writable(host)


def test_key_files_end_0600_and_certificates_0644(lab: Lab) -> None:
    host = lab.hosts[2]
    name = "modes.lab.test"
    t, _ = _transaction(host, name, "20260101T000000Z-ffff")
    assert _apply(host, t).ok
    modes = host.exec(
        [
            "sh",
            "-c",
            f"stat -c '%a %n' /etc/ssl/origin-agent/{name}/*/* /etc/ssl/origin-agent/{name}/*",
        ]
    )
    lines = modes.stdout.decode().splitlines()
    key_modes = {line.split()[0] for line in lines if line.endswith("privkey.pem")}
    assert key_modes == {"600"}
