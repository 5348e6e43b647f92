"""Building and signing X.509 certificates: leaves for TLS servers and CA certificates.

Shared by the ``selfsigned`` and ``localca`` issuers and by ``origin-agent ca init``. Pure:
``now`` comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.pki.csr import general_names, subject_for
from agent.pki.keys import PrivateKey, PublicKey, signature_hash

BACKDATE = timedelta(minutes=5)
"""not_before is set this far before ``now`` to absorb clock skew between machines."""


def to_pem(cert: x509.Certificate) -> str:
    """PEM text of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _leaf_key_usage(public_key: PublicKey) -> x509.KeyUsage:
    is_rsa = isinstance(public_key, rsa.RSAPublicKey)
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=is_rsa,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def build_leaf(
    *,
    public_key: PublicKey,
    names: Sequence[str],
    issuer_key: PrivateKey,
    issuer_cert: x509.Certificate | None,
    now: datetime,
    validity: timedelta,
    serial: int | None = None,
) -> x509.Certificate:
    """A TLS server certificate for ``names`` (already normalised) and ``public_key``.

    With ``issuer_cert`` None the certificate is self-signed (``issuer_key`` must then be the
    key of ``public_key``). ``not_after`` never passes the issuer's own ``not_after``.
    """
    subject = subject_for(names)
    issuer_name = issuer_cert.subject if issuer_cert is not None else subject
    not_before = now - BACKDATE
    not_after = now + validity
    if issuer_cert is not None and not_after > issuer_cert.not_valid_after_utc:
        not_after = issuer_cert.not_valid_after_utc
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(public_key), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(general_names(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer_cert.public_key()  # type: ignore[arg-type]
            ),
            critical=False,
        )
    signer = issuer_key.crypto_key
    return builder.sign(signer, signature_hash(signer))


def build_ca(
    *,
    key: PrivateKey,
    common_name: str,
    now: datetime,
    validity: timedelta,
    issuer_key: PrivateKey | None = None,
    issuer_cert: x509.Certificate | None = None,
    path_length: int | None = None,
) -> x509.Certificate:
    """A CA certificate: a root when ``issuer_cert`` is None, else an intermediate it signs."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "origin-agent"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    signer = issuer_key if issuer_key is not None else key
    not_after = now + validity
    if issuer_cert is not None and not_after > issuer_cert.not_valid_after_utc:
        not_after = issuer_cert.not_valid_after_utc
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    aki_key = issuer_cert.public_key() if issuer_cert is not None else public_key
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(aki_key),  # type: ignore[arg-type]
        critical=False,
    )
    return builder.sign(signer.crypto_key, signature_hash(signer.crypto_key))
