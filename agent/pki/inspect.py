"""Reading certificates: what a PEM certificate or chain says, and whether it fits a key.

Everything here is pure: PEM text in, frozen :class:`CertInfo` values out. Garbage raises
:class:`PemError` (a :class:`~agent.errors.ValidationError`), never a library exception.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from agent.errors import ValidationError
from agent.pki.keys import key_type_of
from agent.pki.pins import spki_der, spki_pin


class PemError(ValidationError):
    """Text that should hold certificates does not."""


@dataclass(frozen=True)
class CertInfo:
    """What one certificate says. Times are aware UTC; ``serial`` is lowercase hex;
    ``fingerprint_sha256`` is lowercase hex of SHA-256 over the DER certificate."""

    subject: str
    common_name: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    key_type: str
    fingerprint_sha256: str
    pin_sha256: str
    is_ca: bool
    self_issued: bool

    @property
    def names(self) -> tuple[str, ...]:
        """All SAN names: DNS names, then IP addresses."""
        return self.dns_names + self.ip_addresses

    def valid_at(self, now: datetime) -> bool:
        """True if ``now`` lies within [not_before, not_after]."""
        return self.not_before <= now <= self.not_after


def load_certificates(pem: str | bytes, *, where: str = "certificate") -> list[x509.Certificate]:
    """Every certificate in PEM text, in order.

    Raises:
        PemError: no certificate, or a CERTIFICATE block that does not parse.
    """
    data = pem.encode("utf-8", "replace") if isinstance(pem, str) else pem
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise PemError("no PEM certificate found", where=where)
    try:
        certs = x509.load_pem_x509_certificates(data)
        for cert in certs:  # force the lazy parts that can still fail
            cert.public_key()
            _ = cert.extensions, cert.subject, cert.issuer
            cert.not_valid_before_utc, cert.not_valid_after_utc  # noqa: B018
    except Exception as err:
        raise PemError("PEM certificate does not parse", where=where) from err
    if not certs:
        raise PemError("no PEM certificate found", where=where)
    return certs


def load_certificate(pem: str | bytes, *, where: str = "certificate") -> x509.Certificate:
    """The first certificate in PEM text.

    Raises:
        PemError: no certificate, or it does not parse.
    """
    return load_certificates(pem, where=where)[0]


def _name_text(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except Exception:  # undecodable attribute values
        return "<unreadable name>"


def _common_name(name: x509.Name) -> str:
    try:
        attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    except Exception:
        return ""
    value = attrs[0].value if attrs else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _sans(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    dns = tuple(str(n) for n in san.get_values_for_type(x509.DNSName))
    ips = tuple(str(n) for n in san.get_values_for_type(x509.IPAddress))
    return dns, ips


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the DER certificate."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def inspect_certificate(cert: x509.Certificate | str | bytes) -> CertInfo:
    """A :class:`CertInfo` for a certificate object or the first certificate in PEM text.

    Raises:
        PemError: PEM text that holds no readable certificate.
    """
    if not isinstance(cert, x509.Certificate):
        cert = load_certificate(cert)
    dns, ips = _sans(cert)
    return CertInfo(
        subject=_name_text(cert.subject),
        common_name=_common_name(cert.subject),
        dns_names=dns,
        ip_addresses=ips,
        issuer=_name_text(cert.issuer),
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_type=key_type_of(cert.public_key()),  # type: ignore[arg-type]
        fingerprint_sha256=fingerprint_sha256(cert),
        pin_sha256=spki_pin(cert),
        is_ca=_is_ca(cert),
        self_issued=cert.subject == cert.issuer,
    )


def inspect_chain(pem: str | bytes) -> tuple[CertInfo, ...]:
    """A :class:`CertInfo` per certificate in PEM text, leaf first.

    Raises:
        PemError: no certificate, or one does not parse.
    """
    return tuple(inspect_certificate(c) for c in load_certificates(pem))


def matches(cert: x509.Certificate | str | bytes, other: Any) -> bool:
    """True if ``cert`` is for the same public key as ``other`` (a key, CSR, certificate or
    PEM text of one): the DER SubjectPublicKeyInfo of both are equal.

    Raises:
        PemError: ``cert`` is PEM text without a readable certificate.
        ValidationError: ``other`` holds no readable public key.
    """
    if not isinstance(cert, x509.Certificate):
        cert = load_certificate(cert)
    return spki_der(cert) == spki_der(other)


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True if ``issuer``'s subject is ``cert``'s issuer and its key verifies the signature."""
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # InvalidSignature, name mismatch, unsupported key type
        return False
    return True


def chain_problem(certs: Sequence[x509.Certificate]) -> str:
    """Why ``certs`` (leaf first) is not a chain where each is signed by the next; ``""`` if
    it is one. The message numbers certificates from 0 (the leaf)."""
    for index in range(len(certs) - 1):
        cert, parent = certs[index], certs[index + 1]
        if not issued_by(cert, parent):
            return (
                f"certificate {index} ({_name_text(cert.subject)}) is not signed by "
                f"certificate {index + 1} ({_name_text(parent.subject)})"
            )
    return ""


def chain_in_order(certs: Sequence[x509.Certificate]) -> bool:
    """True if each certificate is signed by the next one."""
    return not chain_problem(certs)
