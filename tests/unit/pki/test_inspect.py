"""Certificate inspection: fields, key match, chain order, fingerprints."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from agent.pki.csr import make_csr
from agent.pki.inspect import (
    CertInfo,
    PemError,
    chain_in_order,
    chain_problem,
    inspect_certificate,
    inspect_chain,
    load_certificates,
    matches,
)
from agent.pki.issuers.base import IssueRequest
from agent.pki.issuers.localca import LocalCAIssuer
from agent.pki.keys import PrivateKey


def _issue(ca: LocalCAIssuer, key: PrivateKey, names: tuple[str, ...]) -> tuple[str, str]:
    csr = make_csr(key, names)
    bundle = ca.issue(IssueRequest(csr_pem=csr, names=names, validity=timedelta(days=30)))
    return csr, bundle.fullchain_pem


def test_certinfo_reads_every_field(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey, now: datetime
) -> None:
    ca = make_ca(name="Inspect CA")
    _, pem = _issue(ca, key, ("www.example.com", "example.com", "127.0.1.9"))
    info = inspect_certificate(pem)
    assert isinstance(info, CertInfo)
    assert info.subject == "CN=www.example.com"
    assert info.common_name == "www.example.com"
    assert info.dns_names == ("www.example.com", "example.com")
    assert info.ip_addresses == ("127.0.1.9",)
    assert info.names == ("www.example.com", "example.com", "127.0.1.9")
    assert info.issuer == "CN=Inspect CA,O=origin-agent"
    assert info.not_before == now - timedelta(minutes=5)
    assert info.not_after == now + timedelta(days=30)
    assert info.not_after.tzinfo is UTC
    assert info.key_type == "ec256"
    assert info.pin_sha256 == key.pin
    assert not info.is_ca and not info.self_issued
    assert info.valid_at(now) and not info.valid_at(now + timedelta(days=31))
    assert int(info.serial, 16) == load_certificates(pem)[0].serial_number
    assert info.serial == info.serial.lower()


def test_serial_and_fingerprint_agree_with_openssl(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    _, pem = _issue(make_ca(), key, ("fp.example.com",))
    info = inspect_certificate(pem)
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-serial"],
        input=pem.encode(),
        check=True,
        capture_output=True,
    ).stdout.decode()
    fp_line, serial_line = out.splitlines()
    assert fp_line.split("=", 1)[1].replace(":", "").lower() == info.fingerprint_sha256
    assert int(serial_line.split("=", 1)[1], 16) == int(info.serial, 16)


def test_certificate_matches_its_key_and_csr_only(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    csr, pem = _issue(make_ca(), key, ("m.example.com",))
    other = PrivateKey.generate()
    assert matches(pem, key) and matches(pem, csr) and matches(pem, key.pem().reveal())
    assert not matches(pem, other)
    assert not matches(pem, make_csr(other, ["m.example.com"]))


def test_chain_order_is_checked(make_ca: Callable[..., LocalCAIssuer], key: PrivateKey) -> None:
    ca = make_ca(intermediate=True, name="Order CA")
    _, fullchain = _issue(ca, key, ("o.example.com",))
    leaf, inter = load_certificates(fullchain)
    assert chain_in_order([leaf, inter, ca.root])
    assert chain_problem([leaf, inter]) == ""
    assert not chain_in_order([leaf, ca.root, inter])
    assert chain_problem([inter, leaf]) == (
        "certificate 0 (CN=Order CA intermediate,O=origin-agent) is not signed by "
        "certificate 1 (CN=o.example.com)"
    )


def test_ca_certificates_are_recognised(make_ca: Callable[..., LocalCAIssuer]) -> None:
    ca = make_ca(intermediate=True)
    root = inspect_certificate(ca.root)
    (inter,) = inspect_chain(ca.paths.intermediate_cert.read_text())
    assert root.is_ca and root.self_issued
    assert inter.is_ca and not inter.self_issued


@pytest.mark.parametrize(
    "text", ["", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]
)
def test_garbage_is_a_pem_error(text: str) -> None:
    with pytest.raises(PemError):
        inspect_certificate(text)
