"""``rotate`` by the CA's renewal window (ACME ARI) on a lab origin, with real pebble behind an
ARI-adding front (a test double): a certificate whose window has come is renewed with
``replaces`` naming it; one whose window is far is left alone, and the next run asks the CA
nothing at all."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from agent.cli import main
from agent.lab import Lab
from agent.pki.issuers.ari import cert_id
from tests.emulators.ari_front import AriFront
from tests.integration.cas import Pebble
from tests.integration.test_tls_origin import name_of

pytestmark = pytest.mark.integration
DAY = dt.timedelta(days=1)


def deployed(lab: Lab) -> x509.Certificate:
    host = lab.hosts[0]
    path = Path(host.path(f"/etc/ssl/origin-agent/{name_of(host)}/current/cert.pem"))
    return x509.load_pem_x509_certificate(path.read_bytes())


def rotate(lab: Lab, issuer: dict[str, str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = main(["rotate", "-i", lab.inventory_path, "-e", json.dumps({"issuer": issuer})])
    out = capsys.readouterr().out
    assert code == 0, out[-2000:]
    return out.splitlines()[-1]


def test_rotate_follows_the_cas_renewal_window(
    make_lab: Callable[..., Lab],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORIGIN_AGENT_STATE_DIR", str(tmp_path / "state"))
    lab = make_lab(1)
    pebble = Pebble(tmp_path / "pebble", "127.0.0.1", 1, env={"PEBBLE_VA_ALWAYS_VALID": "1"})
    front = AriFront(pebble.port, tmp_path / "pebble", pebble.tls_ca)
    try:
        root = tmp_path / "root.pem"
        root.write_text(pebble.root_pem())
        issuer = {
            "backend": "acme",
            "directory": front.directory,
            "ca_bundle": str(pebble.tls_ca),
            "trust": str(root),
        }
        capsys.readouterr()
        code = main(["bootstrap", "-i", lab.inventory_path, "-e", json.dumps({"issuer": issuer})])
        assert code == 0, capsys.readouterr().out[-2000:]
        first = deployed(lab)
        first_id = cert_id(first)
        assert first_id is not None
        now = dt.datetime.now(dt.UTC)

        front.set_window(first_id, now - 2 * DAY, now - DAY)  # the CA says: renew now
        assert rotate(lab, issuer, capsys).startswith("rotation: 1 rotated")
        second = deployed(lab)
        assert second.serial_number != first.serial_number
        assert front.orders[-1]["replaces"] == first_id

        second_id = cert_id(second)
        assert second_id is not None
        front.set_window(second_id, now + 50 * DAY, now + 52 * DAY)  # far: keep it
        assert rotate(lab, issuer, capsys).startswith("rotation: 0 rotated, 1 unchanged")
        asked = front.count()
        assert rotate(lab, issuer, capsys).startswith("rotation: 0 rotated, 1 unchanged")
        assert front.count() == asked  # the kept window: no request to the CA at all
        assert deployed(lab).serial_number == second.serial_number
    finally:
        front.stop()
        pebble.stop()
