"""The edge's trust by default: Mozilla's roots (certifi) and Cloudflare's Origin CA roots.

Real certificates only: a genuine Origin CA leaf and a real public chain (sources in
tests/fixtures/trust/README.md), look-alike CAs made here with real keys.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from agent.pki.inspect import PemError
from agent.pki.modes import evaluate
from agent.pki.probe import Served
from agent.pki.trust import (
    TrustStore,
    default_trust,
    edge_trust,
    origin_ca_roots,
    parse_bundle,
)
from tests.tlscerts import NOW, make_leaf, make_look_alike

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "trust"
ORIGIN_CA_SHA256 = {
    # Cloudflare's published fingerprints (ECC, then RSA root)
    "AA:63:69:7A:22:76:4B:67:B2:13:4C:E1:4C:B5:69:0E:A3:36:94:0B:93:98:61:13:F4:95:45:91:78:32:D8:0D",
    "D3:C7:E8:5C:91:70:7F:C0:A1:2A:BC:5D:88:26:67:47:AA:4F:A8:E7:B1:62:F6:33:FF:B3:C9:D9:89:94:76:20",
}
CF_NAMES = ["www.anywhererpa.com", "anywhererpa.com"]


def _colons(cert: x509.Certificate) -> str:
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def _served(certs: list[x509.Certificate], sni: str) -> Served:
    der = tuple(c.public_bytes(serialization.Encoding.DER) for c in certs)
    return Served("127.0.0.1", 443, sni, "ok", chain_der=der)  # type: ignore[arg-type]


def _fixture(name: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates((FIXTURES / name).read_bytes())


def test_the_origin_ca_roots_ship_in_the_package_with_cloudflares_fingerprints() -> None:
    roots = origin_ca_roots()
    assert {_colons(c) for c in roots} == ORIGIN_CA_SHA256
    assert all(root in default_trust() for root in roots)


def test_the_public_roots_are_certifis_every_one_zero_serials_included() -> None:
    bundle = Path(certifi.where()).read_bytes()
    blocks = len(re.findall(rb"-----BEGIN CERTIFICATE-----", bundle))
    public, skipped = parse_bundle(bundle)  # warnings are errors here: none escapes
    assert skipped == 0 and len(public) == blocks > 100
    assert all(cert in default_trust() for cert in public)
    assert len(default_trust()) == blocks + 2
    subjects = {c.subject.rfc4514_string() for c in public}
    assert any("Go Daddy Root Certificate Authority - G2" in s for s in subjects)


def test_the_defaults_are_parsed_once_and_each_extra_text_once() -> None:
    assert default_trust() is default_trust() is edge_trust("")
    root = make_look_alike(origin_ca_roots()[0])
    assert edge_trust(root.cert_pem) is edge_trust(root.cert_pem)
    assert root.cert in edge_trust(root.cert_pem) and root.cert not in default_trust()


def test_a_genuine_origin_ca_certificate_is_strict_with_no_configuration() -> None:
    served = _served(_fixture("cloudflare-origin-ca-leaf.pem"), CF_NAMES[0])
    verdict = evaluate(served, names=CF_NAMES, now=NOW)
    assert verdict.mode == "strict", verdict.reasons
    # the defaults are what made it strict: with no anchors it is only Full
    bare = evaluate(served, names=CF_NAMES, trust=TrustStore.from_pem(""), now=NOW)
    assert bare.mode == "full"


@pytest.mark.parametrize("which", [0, 1], ids=["ecc", "rsa"])
def test_a_look_alike_origin_ca_with_the_same_names_and_another_key_is_not_strict(
    which: int,
) -> None:
    genuine = origin_ca_roots()[which]
    fake = make_look_alike(genuine)
    assert fake.cert.subject == genuine.subject
    leaf = make_leaf(CF_NAMES, issuer=fake)
    served = _served([leaf.cert], CF_NAMES[0])
    verdict = evaluate(served, names=CF_NAMES, now=NOW)
    assert verdict.mode == "full"
    assert verdict.reasons[0].startswith("untrusted chain: ")
    assert "CloudFlare Origin SSL" in verdict.reasons[0]
    # the same leaf is strict only where its own root is trusted (as `trust:` would add it)
    assert evaluate(served, names=CF_NAMES, trust_anchors_pem=fake.cert_pem, now=NOW).mode == (
        "strict"
    )


def test_a_real_public_chain_is_strict_at_a_fixed_time_and_not_once_expired() -> None:
    chain = _fixture("docs.python.org-chain.pem")
    served = _served(chain, "docs.python.org")
    at = datetime(2026, 6, 1, tzinfo=UTC)
    assert evaluate(served, names=["docs.python.org"], now=at).mode == "strict"
    later = evaluate(served, names=["docs.python.org"], now=datetime(2027, 3, 1, tzinfo=UTC))
    assert later.mode == "full" and later.reasons == ("expired on 2027-02-14 13:03 UTC",)
    # without its intermediate the chain does not reach the root
    alone = evaluate(_served(chain[:1], "docs.python.org"), names=["docs.python.org"], now=at)
    assert alone.mode == "full" and alone.reasons[0].startswith("untrusted chain: no path")


def test_a_self_signed_certificate_is_full_despite_the_default_trust() -> None:
    leaf = make_leaf(["origin.example.com"])
    verdict = evaluate(
        _served([leaf.cert], "origin.example.com"), names=["origin.example.com"], now=NOW
    )
    assert verdict.mode == "full" and verdict.reasons == ("self-signed",)


def test_extra_anchors_that_are_not_certificates_are_an_error_naming_them() -> None:
    with pytest.raises(PemError) as err:
        edge_trust("not a certificate", where="issuer localca trust anchors")
    assert str(err.value) == "issuer localca trust anchors: no PEM certificate found"
