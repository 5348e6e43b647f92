"""SPKI pins agree with openssl and across key, CSR and certificate."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from agent.errors import ValidationError
from agent.pki.csr import make_csr
from agent.pki.issuers.base import IssueRequest
from agent.pki.issuers.selfsigned import SelfSignedIssuer
from agent.pki.keys import PrivateKey, write_key_file
from agent.pki.pins import spki_pin


def _openssl_pin(key_file: Path) -> str:
    """openssl pkey -pubout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary
    | base64, run for real."""
    pub = subprocess.run(
        ["openssl", "pkey", "-in", str(key_file), "-pubout"], check=True, capture_output=True
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, check=True, capture_output=True
    ).stdout
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-binary"], input=der, check=True, capture_output=True
    ).stdout
    return (
        subprocess.run(["base64"], input=digest, check=True, capture_output=True)
        .stdout.decode()
        .strip()
    )


@pytest.mark.parametrize("key_type", ["ec256", "ec384", "rsa2048"])
def test_key_pin_equals_the_openssl_pipeline(tmp_path: Path, key_type: str) -> None:
    key = PrivateKey.generate(key_type)
    path = write_key_file(tmp_path / "key.pem", key.pem())
    assert key.pin == _openssl_pin(path)
    assert len(key.pin) == 44 and key.pin.endswith("=")


def test_pin_is_the_same_for_key_csr_certificate_and_public_key(key: PrivateKey) -> None:
    csr = make_csr(key, ["pin.example.com"])
    bundle = SelfSignedIssuer().issue(
        IssueRequest(csr_pem=csr, names=("pin.example.com",), key_pem=key.pem().reveal())
    )
    pub_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    pins = {
        key.pin,
        spki_pin(csr),
        spki_pin(bundle.cert_pem),
        spki_pin(pub_pem),
        spki_pin(key.pem().reveal()),
        spki_pin(key.crypto_key),
    }
    assert pins == {key.pin}


def test_pins_of_different_keys_differ() -> None:
    assert PrivateKey.generate().pin != PrivateKey.generate().pin


def test_text_without_a_key_has_no_pin() -> None:
    with pytest.raises(ValidationError) as exc:
        spki_pin("hello")
    assert str(exc.value) == "pin: no certificate, CSR or key in PEM text"
