"""Look at an origin from outside: one TLS handshake, without verification, and what it served.

:func:`probe` connects from the controller, sends SNI, does the handshake with
certificate verification off (so an expired, self-signed or misnamed certificate is still
fetched, judged later by :mod:`agent.pki.modes`), records protocol, cipher, the whole served
chain (pyOpenSSL's ``get_peer_cert_chain``; the stdlib has it only from Python 3.13), and
whether the server asked for a client certificate (its CertificateRequest, seen through the
handshake state callback). It then sends one ``GET /``: TLS 1.3 servers that *require* a client
certificate say so only after the handshake (an alert, or nginx's HTTP 400
"No required SSL certificate was sent").

:func:`probe_http` asks plain HTTP (port 80: the ACME path, the redirect, or Flexible mode).
Every step is bounded by ``timeout`` (one deadline per connection).
"""

from __future__ import annotations

import ipaddress
import re
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

from agent.secret import Secret

# what may follow "Host: " in a request we build by hand: a name, an IPv4 or a bracketed IPv6
# literal, an optional port; never CR/LF or anything else that would add a header
_HOST_HEADER = re.compile(
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
_VERSIONS = {"TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}
_CERT_REQUEST_STATE = b"read server certificate request"
_NOT_TLS_REASONS = (
    "wrong version number",
    "packet length too long",
    "record layer failure",
    "unexpected eof",
    "http request",
)


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate (PEM, leaf first) and its key, for authenticated origin pulls."""

    cert_pem: str
    key_pem: Secret = field(repr=False)


@dataclass(frozen=True)
class Served:
    """What one address:port served for one SNI name."""

    address: str
    port: int
    sni: str | None
    outcome: Outcome
    error: str = ""
    protocol: str = ""  # "TLSv1.3"
    cipher: str = ""
    chain_der: tuple[bytes, ...] = ()  # as served, leaf first
    client_cert_requested: bool = False
    client_ca_names: tuple[str, ...] = ()
    client_cert_sent: bool = False
    http_status: int | None = None

    @property
    def tls(self) -> bool:
        """The port speaks TLS (even if this handshake or request was refused)."""
        return self.outcome in (
            "ok",
            "handshake_failed",
            "client_cert_required",
            "client_cert_rejected",
        )

    @property
    def requires_client_cert(self) -> bool:
        return self.outcome == "client_cert_required"

    @property
    def certificates(self) -> list[x509.Certificate]:
        return [x509.load_der_x509_certificate(der) for der in self.chain_der]

    @property
    def leaf_der(self) -> bytes | None:
        return self.chain_der[0] if self.chain_der else None

    @property
    def chain_pems(self) -> tuple[str, ...]:
        return tuple(c.public_bytes(serialization.Encoding.PEM).decode() for c in self.certificates)

    @property
    def leaf_pem(self) -> str:
        pems = self.chain_pems
        return pems[0] if pems else ""


@dataclass(frozen=True)
class HttpAnswer:
    """Status line and ``Location`` of a plain HTTP answer (``status`` None: no HTTP)."""

    status: int | None
    location: str = ""
    error: str = ""
    body: bytes = b""
    server: str = ""  # the Server header, e.g. "nginx/1.22.1"


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _reason(err: BaseException) -> str:
    """One line from a pyOpenSSL error: the OpenSSL reason strings, or the exception text."""
    if isinstance(err, SSL.Error) and err.args and isinstance(err.args[0], list):
        reasons = [str(e[2]) for e in err.args[0] if isinstance(e, tuple) and len(e) == 3]
        if reasons:
            return "; ".join(reasons)
    return str(err) or type(err).__name__


def _connect(address: str, port: int, deadline: float) -> socket.socket | tuple[Outcome, str]:
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


def _wait(sock: socket.socket, deadline: float, write: bool = False) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    readable, writable, _ = select.select(
        [] if write else [sock], [sock] if write else [], [], remaining
    )
    if not readable and not writable:
        raise TimeoutError


def _call(
    conn: SSL.Connection, sock: socket.socket, deadline: float, fn: str, *args: object
) -> object:
    """Call ``conn.fn(*args)`` on a non-blocking socket until it completes or the deadline."""
    for _ in range(100000):  # bounded: each turn waits for the socket or the deadline
        try:
            return getattr(conn, fn)(*args)
        except SSL.WantReadError:
            _wait(sock, deadline)
        except SSL.WantWriteError:
            _wait(sock, deadline, write=True)
    raise TimeoutError


def _context(
    client_cert: ClientCertificate | None, min_version: str | None, max_version: str | None
) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE)
    ctx.set_min_proto_version(_VERSIONS[min_version] if min_version else SSL.TLS1_2_VERSION)
    if max_version:
        ctx.set_max_proto_version(_VERSIONS[max_version])
    if client_cert is not None:
        certs = x509.load_pem_x509_certificates(client_cert.cert_pem.encode())
        key = serialization.load_pem_private_key(client_cert.key_pem.reveal_bytes(), password=None)
        ctx.use_certificate(certs[0])
        ctx.use_privatekey(key)  # type: ignore[arg-type]
    return ctx


def probe(
    address: str,
    port: int,
    sni: str | None,
    *,
    timeout: float = 10.0,
    client_cert: ClientCertificate | None = None,
    min_version: str | None = None,
    max_version: str | None = None,
    http_request: bool = True,
) -> Served:
    """Handshake with ``address:port`` (SNI ``sni``) and report what was served.

    ``min_version``/``max_version`` are "TLSv1.2" or "TLSv1.3" (default: 1.2 up to 1.3).
    Never raises for what the server does: refusals, timeouts and failed handshakes are
    outcomes. A plain-HTTP port is detected by asking it for HTTP.
    """
    deadline = time.monotonic() + timeout
    sock = _connect(address, port, deadline)
    if isinstance(sock, tuple):
        return Served(address, port, sni, sock[0], error=sock[1])
    requested: list[bool] = []

    def on_info(conn: SSL.Connection, where: int, ret: int) -> None:
        if _CERT_REQUEST_STATE in conn.get_state_string():
            requested.append(True)

    ctx = _context(client_cert, min_version, max_version)
    ctx.set_info_callback(on_info)
    conn = SSL.Connection(ctx, sock)
    if sni and not _is_ip(sni):  # RFC 6066: no IP literals in SNI
        conn.set_tlsext_host_name(sni.encode("idna"))
    conn.set_connect_state()

    def served(outcome: Outcome, error: str = "", status: int | None = None) -> Served:
        chain = conn.get_peer_cert_chain(as_cryptography=True) or []
        version = conn.get_protocol_version_name()
        return Served(
            address,
            port,
            sni,
            outcome,
            error=error,
            protocol=version
            if outcome not in ("plain_http", "not_tls", "handshake_failed") and version != "unknown"
            else "",
            cipher=conn.get_cipher_name() or "",
            chain_der=tuple(c.public_bytes(serialization.Encoding.DER) for c in chain),
            client_cert_requested=bool(requested),
            client_ca_names=tuple(
                n.rfc4514_string() for n in conn.get_client_ca_list(as_cryptography=True)
            ),
            client_cert_sent=client_cert is not None and bool(requested),
            http_status=status,
        )

    try:
        try:
            _call(conn, sock, deadline, "do_handshake")
        except TimeoutError:
            return served("timeout", f"TLS handshake with {address}:{port} timed out")
        except (SSL.Error, OSError) as err:
            reason = _reason(err)
            if requested:
                return served(
                    "client_cert_required" if client_cert is None else "client_cert_rejected",
                    reason,
                )
            if any(r in reason.lower() for r in _NOT_TLS_REASONS) or isinstance(
                err, SSL.SysCallError
            ):
                answer = probe_http(
                    address, port, sni or address, timeout=max(deadline - time.monotonic(), 0.5)
                )
                if answer.status is not None:
                    return served(
                        "plain_http", f"{address}:{port} speaks plain HTTP", answer.status
                    )
                return served("not_tls", reason)
            return served("handshake_failed", reason)
        if not http_request:
            return served("ok")
        host = sni or address
        if not _HOST_HEADER.fullmatch(_bracketed(host)):
            return served("ok", "request not sent: the Host value is not a host name")
        request = (
            f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: origin-agent-probe\r\n"
            "Connection: close\r\n\r\n"
        )
        try:
            _call(conn, sock, deadline, "sendall", request.encode("ascii"))
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = _call(conn, sock, deadline, "recv", 4096)
                if not isinstance(chunk, bytes) or not chunk:
                    break
                data += chunk
            if b"\r\n\r\n" in data and len(data) < 8192:  # a short error page: read its body too
                try:
                    more = _call(conn, sock, min(deadline, time.monotonic() + 1.0), "recv", 8192)
                    data += more if isinstance(more, bytes) else b""
                except (SSL.Error, OSError, TimeoutError):
                    pass
        except SSL.ZeroReturnError:
            data = b""
        except (SSL.Error, OSError) as err:
            if requested:
                return served(
                    "client_cert_required" if client_cert is None else "client_cert_rejected",
                    _reason(err),
                )
            return served("ok", f"request failed: {_reason(err)}")
        except TimeoutError:
            return served("ok", "no HTTP answer before the timeout")
        status = _status(data)
        if status == 400 and requested and b"SSL certificate" in data:  # nginx's way of refusing
            if client_cert is None:
                return served(
                    "client_cert_required", "HTTP 400: no client certificate sent", status
                )
            return served("client_cert_rejected", "HTTP 400: client certificate refused", status)
        return served("ok", "", status)
    finally:
        sock.close()


def _bracketed(host: str) -> str:
    """``host`` as a Host header writes it (an IPv6 literal in brackets)."""
    return f"[{host}]" if ":" in host and _is_ip(host) else host


def _status(data: bytes) -> int | None:
    line = data.split(b"\r\n", 1)[0].split()
    if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit():
        return int(line[1])
    return None


def probe_http(
    address: str, port: int, host: str, *, path: str = "/", timeout: float = 10.0
) -> HttpAnswer:
    """``GET path`` over plain HTTP; the status and ``Location`` header (no redirects followed)."""
    if not _HOST_HEADER.fullmatch(_bracketed(host)):
        return HttpAnswer(None, error="request not sent: the Host value is not a host name")
    deadline = time.monotonic() + timeout
    sock = _connect(address, port, deadline)
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
    return HttpAnswer(_status(data), location, body=body, server=server)
