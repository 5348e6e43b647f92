"""Certificate signing requests with DNS and IP subject alternative names.

Names are validated before they go anywhere: a DNS name must pass
:func:`agent.validate.check_hostname`, anything else must parse as an IP address. The
first name is the subject CN (when it fits the 64-character CN limit).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from agent.errors import ValidationError
from agent.pki.keys import PrivateKey, signature_hash
from agent.validate import check_hostname

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def normalize_name(name: str, *, where: str = "") -> str:
    """A validated certificate name: an IP address in canonical form, or a lowercase DNS name
    without a trailing dot.

    Raises:
        ValidationError: neither an IP address nor a valid hostname.
    """
    if not isinstance(name, str):
        raise ValidationError(f"invalid certificate name {name!r}", where=where or None)
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    check_hostname(name, where=where)
    return name.lower().rstrip(".")


def normalize_names(names: Iterable[str], *, where: str = "") -> tuple[str, ...]:
    """Validate and normalise ``names``, keeping order and dropping duplicates.

    Raises:
        ValidationError: no names, or one is invalid.
    """
    out: list[str] = []
    for name in names:
        norm = normalize_name(name, where=where)
        if norm not in out:
            out.append(norm)
    if not out:
        raise ValidationError("a certificate needs at least one name", where=where or None)
    return tuple(out)


def general_names(names: Sequence[str]) -> list[x509.GeneralName]:
    """SAN entries for already-normalised ``names`` (IP addresses as iPAddress entries)."""
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def subject_for(names: Sequence[str]) -> x509.Name:
    """Subject with CN = first name (empty subject if that name is longer than 64 chars)."""
    first = names[0]
    if len(first) > 64:
        return x509.Name([])
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first)])


def make_csr(key: PrivateKey, names: Iterable[str], *, where: str = "") -> str:
    """A PEM CSR for ``names`` signed with ``key``.

    Raises:
        ValidationError: no names, or one is invalid.
    """
    norm = normalize_names(names, where=where)
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject_for(norm))
        .add_extension(x509.SubjectAlternativeName(general_names(norm)), critical=False)
    )
    csr = builder.sign(key.crypto_key, signature_hash(key.crypto_key))
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_csr(pem: str | bytes, *, where: str = "csr") -> x509.CertificateSigningRequest:
    """Parse a PEM CSR and check its self-signature.

    Raises:
        ValidationError: not a PEM CSR, or its signature does not verify.
    """
    data = pem.encode("utf-8", "replace") if isinstance(pem, str) else pem
    try:
        csr = x509.load_pem_x509_csr(data)
        valid = csr.is_signature_valid
    except Exception as err:
        raise ValidationError("not a PEM certificate signing request", where=where) from err
    if not valid:
        raise ValidationError("CSR signature does not verify", where=where)
    return csr


def csr_names(csr: x509.CertificateSigningRequest) -> tuple[str, ...]:
    """The SAN names of a CSR (DNS names then IP addresses, as text)."""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(n) for n in san.get_values_for_type(x509.IPAddress)]
    return tuple(dns + ips)
