"""What each origin serves right now: the SHA-256 fingerprint of the leaf certificate seen in
a TLS handshake to ``address:443`` with SNI (no verification: we compare fingerprints)."""

from __future__ import annotations

import hashlib
import socket
import ssl
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor


def fingerprint(
    address: str, server_name: str, port: int = 443, timeout: float = 5.0
) -> str | None:
    """Hex SHA-256 of the served leaf certificate (DER), or None if no handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((address, port), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=server_name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None
    return hashlib.sha256(der).hexdigest() if der else None


def fingerprints(
    targets: Sequence[tuple[str, str, str]], workers: int = 16
) -> dict[str, str | None]:
    """``{host: fingerprint}`` for ``(host, address, server_name)`` targets, in parallel."""
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets)))) as pool:
        found = pool.map(lambda t: fingerprint(t[1], t[2]), targets)
        return {t[0]: fp for t, fp in zip(targets, found, strict=True)}
