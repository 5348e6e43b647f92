"""SPKI pins: ``base64(SHA-256(DER SubjectPublicKeyInfo))``, the HPKP ``pin-sha256`` value.

A pin names a key, not a certificate, so it survives re-issuance with the same key. The same
value comes out for a private key, its CSR and every certificate made for it.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from agent.errors import ValidationError

if TYPE_CHECKING:
    from agent.pki.keys import PrivateKey


def spki_der(obj: Any) -> bytes:
    """DER SubjectPublicKeyInfo of a key, CSR or certificate.

    ``obj`` may be a :class:`~agent.pki.keys.PrivateKey`, a ``cryptography`` public or private
    key, an ``x509.Certificate`` or ``x509.CertificateSigningRequest``, or PEM text of any of
    those (see :func:`spki_der_from_pem`).

    Raises:
        ValidationError: ``obj`` carries no public key we can read.
    """
    from agent.pki.keys import PrivateKey

    if isinstance(obj, str | bytes):
        return spki_der_from_pem(obj)
    if isinstance(obj, PrivateKey):
        obj = obj.public_key()
    elif isinstance(obj, x509.Certificate | x509.CertificateSigningRequest):
        try:
            obj = obj.public_key()
        except Exception as err:  # unsupported algorithm in the structure
            raise ValidationError("unsupported public key", where="pin") from err
    elif hasattr(obj, "private_bytes") and hasattr(obj, "public_key"):
        obj = obj.public_key()
    if not hasattr(obj, "public_bytes"):
        raise ValidationError(f"cannot compute a pin for {type(obj).__name__}", where="pin")
    der: bytes = obj.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def spki_pin(obj: Any) -> str:
    """The ``pin-sha256`` (standard base64, 44 characters) of ``obj``'s public key.

    Raises:
        ValidationError: ``obj`` carries no public key we can read.
    """
    return base64.b64encode(hashlib.sha256(spki_der(obj)).digest()).decode("ascii")


def spki_der_from_pem(pem: str | bytes) -> bytes:
    """DER SubjectPublicKeyInfo from PEM text: the first CERTIFICATE, CERTIFICATE REQUEST,
    PUBLIC KEY or PRIVATE KEY block found.

    Raises:
        ValidationError: no such block, or it does not parse.
    """
    from agent.pki.keys import PrivateKey

    data = pem.encode("utf-8", "replace") if isinstance(pem, str) else pem
    text = data.decode("ascii", "replace")
    try:
        if "-----BEGIN CERTIFICATE-----" in text:
            return spki_der(x509.load_pem_x509_certificate(data))
        if "CERTIFICATE REQUEST-----" in text:
            return spki_der(x509.load_pem_x509_csr(data))
        if "-----BEGIN PUBLIC KEY-----" in text:
            return spki_der(serialization.load_pem_public_key(data))
    except ValidationError:
        raise
    except Exception as err:
        raise ValidationError("PEM block does not parse", where="pin") from err
    if "PRIVATE KEY-----" in text:
        return spki_der(PrivateKey.from_pem(data, where="pin"))
    raise ValidationError("no certificate, CSR or key in PEM text", where="pin")


def key_pin(key: PrivateKey) -> str:
    """Pin of a :class:`~agent.pki.keys.PrivateKey` (same as ``key.pin``)."""
    return spki_pin(key)
