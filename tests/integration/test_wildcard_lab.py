"""A lab origin serves a wildcard certificate that real pebble issued through dns-01, the TXT
records made through the Cloudflare DNS API emulator (writing into pebble-challtestsrv)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from agent.cli import main
from agent.lab import Lab
from agent.pki.modes import evaluate
from agent.pki.probe import probe
from tests.emulators.cloudflare_dns import CloudflareDnsEmulator
from tests.integration.cas import Pebble, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_lab_origin_serves_a_wildcard_issued_through_dns01(
    make_lab: Callable[..., Lab],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORIGIN_AGENT_STATE_DIR", str(tmp_path / "state"))
    lab = make_lab(1)
    host = lab.hosts[0]
    pebble = Pebble(tmp_path / "pebble", "127.0.0.1", free_port())
    dns = CloudflareDnsEmulator(f"http://127.0.0.1:{pebble.dns_mgmt_port}", ["origin.test"])
    try:
        monkeypatch.setenv("ORIGIN_AGENT_TEST_CF_DNS_TOKEN", dns.token)
        root = tmp_path / "pebble-root.pem"
        root.write_text(pebble.root_pem())
        issuer = {
            "backend": "acme",
            "directory": pebble.directory,
            "ca_bundle": str(pebble.tls_ca),
            "trust": str(root),
            "challenge": "dns-01",
            "dns_api": dns.base_url,
            "dns_token_env": "ORIGIN_AGENT_TEST_CF_DNS_TOKEN",
            "dns_zone_id": dns.zone_id("origin.test"),
            "dns_servers": [f"127.0.0.1:{pebble.dns_port}"],
            "dns_wait": 30,
        }
        names = ["h1.origin.test", "*.h1.origin.test"]
        extra = json.dumps({"issuer": issuer, "tls_names": names})
        code = main(["bootstrap", "-i", lab.inventory_path, "-e", extra, "--json"])
        out = capsys.readouterr()
        assert code == 0, out.out[-3000:] + out.err

        served = probe(host.address, 443, "www.h1.origin.test", timeout=10)
        assert served.leaf_der is not None
        leaf = x509.load_der_x509_certificate(served.leaf_der)
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(names)
        now = leaf.not_valid_before_utc
        verdict = evaluate(
            served,
            names=["www.h1.origin.test"],
            trust_anchors_pem=root.read_text(),
            pins=[],
            now=now + (leaf.not_valid_after_utc - now) / 2,
            http_available=True,
        )
        assert verdict.mode == "strict", verdict.reasons
        assert dns.txt_records() == []  # every challenge record was removed

        calls = len(dns.seen)  # a second run changes nothing and touches no DNS record
        code = main(["bootstrap", "-i", lab.inventory_path, "-e", extra, "--json"])
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert code == 0 and all(h["changed"] == 0 for h in events[-1]["hosts"])
        assert len(dns.seen) == calls
    finally:
        dns.stop()
        pebble.stop()
