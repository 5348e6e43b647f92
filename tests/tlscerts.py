"""Real test certificates (cryptography, EC P-256): roots, intermediates, leaves, self-signed.

The one certificate builder of the test suite (unit and integration; the Cloudflare emulator
is a CA of its own and signs as the real one does). Extensions follow what
``cryptography.x509.verification`` (web PKI profile) expects, so a chain made here verifies
exactly when it should. ``NOW`` is a fixed instant for pure tests; anything a live server or
client will judge takes ``start=fresh()``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def fresh() -> datetime:
    """A start of validity for certificates judged by the real clock: five minutes ago."""
    return datetime.now(UTC) - timedelta(minutes=5)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def key_pem_traditional(self) -> bytes:
        """The key as ``EC PRIVATE KEY`` PEM (what cfssl reads)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(
    cn: str = "Test Root",
    *,
    parent: Issued | None = None,
    start: datetime = NOW - timedelta(days=30),
    days: int = 3650,
    path_length: int | None = None,
) -> Issued:
    """A root CA (``parent`` None) or an intermediate signed by ``parent``."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name = parent.cert.subject if parent else _name(cn)
    signer = parent.key if parent else key
    issuer_pub = parent.key.public_key() if parent else key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_pub), critical=False
        )
    )
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def make_leaf(
    names: list[str],
    *,
    issuer: Issued | None = None,
    start: datetime = NOW - timedelta(days=1),
    days: int = 90,
    key: CertificateIssuerPrivateKeyTypes | None = None,
    client: bool = False,
    ips: Sequence[str] = (),
) -> Issued:
    """A leaf for ``names`` (and ``ips``) signed by ``issuer`` (self-signed when ``issuer`` is
    None), for ``key`` (a new EC key when None)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    cn = names[0] if names else "client"
    issuer_name = issuer.cert.subject if issuer else _name(cn)
    signer = issuer.key if issuer else key
    issuer_pub = issuer.key.public_key() if issuer else key.public_key()
    usage = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_pub), critical=False
        )
    )
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def write_cert_dir(directory: Path, leaf: Issued, chain: list[Issued]) -> Path:
    """The agent's layout: privkey.pem (0600 from the first byte), cert.pem, chain.pem,
    fullchain.pem (leaf first)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "privkey.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(leaf.key_pem)
    chain_pem = "".join(c.cert_pem for c in chain)
    (directory / "cert.pem").write_text(leaf.cert_pem)
    (directory / "chain.pem").write_text(chain_pem)
    (directory / "fullchain.pem").write_text(leaf.cert_pem + chain_pem)
    return directory


def make_look_alike(of: x509.Certificate) -> Issued:
    """A root with the same names and extensions as ``of`` but a key of its own."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(of.subject)
        .issuer_name(of.issuer)
        .public_key(key.public_key())
        .serial_number(of.serial_number)
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return Issued(builder.sign(key, hashes.SHA256()), key)
