"""A TLS handshake seen from the origin itself: ``openssl s_client`` run there (through
whatever transport the caller has), its output read back as a :class:`~agent.pki.probe.Served`.

This is how an origin is judged when the controller cannot reach its HTTPS port (firewalled to
the CDN's address ranges, or reachable only through a bastion): the edge's view is the
certificate the server presents, and the origin can fetch that as well as anyone. The argv and
the parser are pure; running it is the caller's business.
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from agent.pki.probe import Outcome, Served
from agent.transport.quote import join

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
_NEW = re.compile(r"^New, (TLSv[0-9.]+), Cipher is (\S+)", re.M)
_PROTOCOL = re.compile(r"^\s*Protocol\s*:\s*(TLSv[0-9.]+)", re.M)
_CA_NAMES = re.compile(
    r"^Acceptable client certificate CA names\n(.*?)^(?:Requested|Client|---)", re.M | re.S
)


def argv(address: str, port: int, name: str) -> list[str]:
    """The handshake: SNI ``name``, the whole chain printed, stdin closed (no request sent)."""
    host = f"[{address}]" if ":" in address else address
    return ["openssl", "s_client", "-connect", f"{host}:{port}", "-servername", name, "-showcerts"]


def shell(address: str, port: int, name: str) -> str:
    """:func:`argv` as one quoted shell command line, stdin from /dev/null, errors kept."""
    return f"{join(argv(address, port, name))} </dev/null 2>&1"


def parse(output: str, *, address: str, port: int, name: str) -> Served:
    """Pure: what ``openssl s_client -showcerts`` printed, as the handshake it reports."""
    chain: list[bytes] = []
    for pem in _PEM.findall(output):
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError:
            continue
        chain.append(cert.public_bytes(serialization.Encoding.DER))
    new = _NEW.search(output)
    protocol = _PROTOCOL.search(output)
    requested = _CA_NAMES.search(output)
    ca_names = tuple(
        line.strip()
        for line in (requested.group(1) if requested else "").splitlines()
        if line.strip() and not line.startswith("No client")
    )
    outcome: Outcome = "ok"
    error = ""
    if not chain:
        outcome, error = _failure(output)
    return Served(
        address=address,
        port=port,
        sni=name,
        outcome=outcome,
        error=error,
        protocol=(protocol.group(1) if protocol else new.group(1) if new else ""),
        cipher=new.group(2) if new else "",
        chain_der=tuple(chain),
        client_cert_requested=requested is not None and bool(ca_names),
        client_ca_names=ca_names,
    )


def _failure(output: str) -> tuple[Outcome, str]:
    text = output.lower()
    if "errno=111" in text or "connection refused" in text:
        return "refused", "connection refused"
    if "errno=110" in text or "timed out" in text:
        return "timeout", "timed out"
    if "wrong version number" in text or "packet length too long" in text:
        return "not_tls", "not TLS"
    if "not found" in text and "openssl" in text:
        return "unreachable", "openssl is not installed on the origin"
    last = next((x.strip() for x in reversed(output.splitlines()) if x.strip()), "")
    return "handshake_failed", last[-200:] or "no certificate served"
