"""Key generation, PEM round trips and key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agent.errors import ValidationError
from agent.pki.keys import KEY_TYPES, PrivateKey, check_key_type, write_key_file
from agent.secret import Secret


@pytest.mark.parametrize("key_type", ["ec256", "ec384", "rsa2048"])
def test_generated_key_has_the_asked_type_and_round_trips_as_pkcs8(key_type: str) -> None:
    key = PrivateKey.generate(key_type)
    assert key.key_type == key_type
    pem = key.pem()
    assert isinstance(pem, Secret)
    assert pem.reveal().startswith("-----BEGIN PRIVATE KEY-----\n")
    again = PrivateKey.from_pem(pem)
    assert again.key_type == key_type
    assert again.pin == key.pin


@pytest.mark.slow
@pytest.mark.parametrize(("key_type", "bits"), [("rsa3072", 3072), ("rsa4096", 4096)])
def test_large_rsa_keys_have_their_size(key_type: str, bits: int) -> None:
    key = PrivateKey.generate(key_type)
    assert isinstance(key.crypto_key, rsa.RSAPrivateKey)
    assert key.crypto_key.key_size == bits


def test_curves_are_p256_and_p384() -> None:
    k256, k384 = PrivateKey.generate("ec256").crypto_key, PrivateKey.generate("ec384").crypto_key
    assert isinstance(k256, ec.EllipticCurvePrivateKey)
    assert isinstance(k384, ec.EllipticCurvePrivateKey)
    assert (k256.curve.name, k384.curve.name) == ("secp256r1", "secp384r1")


def test_default_key_type_is_ec256() -> None:
    assert PrivateKey.generate().key_type == "ec256"
    assert KEY_TYPES == ("ec256", "ec384", "rsa2048", "rsa3072", "rsa4096")


def test_unknown_key_type_lists_the_accepted_ones() -> None:
    with pytest.raises(ValidationError) as exc:
        check_key_type("dsa1024", where="--key-type")
    assert str(exc.value) == (
        "--key-type: unknown key type 'dsa1024' (expected one of: ec256, ec384, rsa2048, "
        "rsa3072, rsa4096)"
    )


def test_garbage_is_not_a_private_key() -> None:
    with pytest.raises(ValidationError) as exc:
        PrivateKey.from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert str(exc.value) == "key: not an unencrypted PEM private key"


def test_key_file_is_0600_even_with_an_open_umask(tmp_path: Path, key: PrivateKey) -> None:
    old = os.umask(0)
    try:
        path = write_key_file(tmp_path / "k.pem", key.pem())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PrivateKey.from_pem(path.read_bytes()).pin == key.pin


def test_key_file_is_never_overwritten_unless_asked(tmp_path: Path, key: PrivateKey) -> None:
    path = tmp_path / "k.pem"
    path.write_text("precious")
    with pytest.raises(ValidationError) as exc:
        write_key_file(path, key.pem())
    assert str(exc.value) == f"{path}: key file already exists; refusing to overwrite it"
    assert path.read_text() == "precious"
    path.chmod(0o644)
    write_key_file(path, key.pem(), overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PrivateKey.from_pem(path.read_bytes()).pin == key.pin
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]


def test_key_file_does_not_follow_a_planted_symlink(tmp_path: Path, key: PrivateKey) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "k.pem").symlink_to(target)
    with pytest.raises(ValidationError):
        write_key_file(tmp_path / "k.pem", key.pem())
    assert not target.exists()
