"""Plain HTTP from outside (:func:`probe_http`: port 80, the ACME path, the redirect, or
Flexible mode) and the bounded TCP connection both probes start with."""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from dataclasses import dataclass
from typing import Literal

# what may follow "Host: " in a request we build by hand: a name, an IPv4 or a bracketed IPv6
# literal, an optional port; never CR/LF or anything else that would add a header
HOST_HEADER = re.compile(
    r"^[A-Za-z0-9._*-]{1,253}(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$"
)

Outcome = Literal[
    "ok",
    "refused",
    "timeout",
    "unreachable",
    "plain_http",
    "not_tls",
    "handshake_failed",
    "client_cert_required",
    "client_cert_rejected",
]


@dataclass(frozen=True)
class HttpAnswer:
    """Status line and ``Location`` of a plain HTTP answer (``status`` None: no HTTP)."""

    status: int | None
    location: str = ""
    error: str = ""
    body: bytes = b""
    server: str = ""  # the Server header, e.g. "nginx/1.22.1"


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def connect_bounded(
    address: str, port: int, deadline: float
) -> socket.socket | tuple[Outcome, str]:
    try:
        sock = socket.create_connection(
            (address, port), timeout=max(deadline - time.monotonic(), 0.01)
        )
    except ConnectionRefusedError:
        return "refused", f"connection to {address}:{port} refused"
    except TimeoutError:
        return "timeout", f"no answer from {address}:{port}"
    except OSError as err:
        return "unreachable", f"{address}:{port}: {err.strerror or err}"
    sock.setblocking(False)
    return sock


def bracketed(host: str) -> str:
    """``host`` as a Host header writes it (an IPv6 literal in brackets)."""
    return f"[{host}]" if ":" in host and is_ip(host) else host


def status_of(data: bytes) -> int | None:
    line = data.split(b"\r\n", 1)[0].split()
    if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit():
        return int(line[1])
    return None


def probe_http(
    address: str, port: int, host: str, *, path: str = "/", timeout: float = 10.0
) -> HttpAnswer:
    """``GET path`` over plain HTTP; the status and ``Location`` header (no redirects followed)."""
    if not HOST_HEADER.fullmatch(bracketed(host)):
        return HttpAnswer(None, error="request not sent: the Host value is not a host name")
    deadline = time.monotonic() + timeout
    sock = connect_bounded(address, port, deadline)
    if isinstance(sock, tuple):
        return HttpAnswer(None, error=sock[1])
    data = b""
    try:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("ascii")
        )
        while len(data) < 65536:  # Connection: close, so the answer ends at EOF
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError as err:
        if not data:
            return HttpAnswer(None, error=str(err))
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    location = server = ""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"location":
            location = value.strip().decode("latin-1")
        elif name.strip().lower() == b"server":
            server = value.strip().decode("latin-1")[:100]
    return HttpAnswer(status_of(data), location, body=body, server=server)
