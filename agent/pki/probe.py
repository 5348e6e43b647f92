"""Look at an origin from outside: one TLS handshake, without verification, and what it served.

:func:`probe` connects from the controller, sends SNI, does the handshake with
certificate verification off (so an expired, self-signed or misnamed certificate is still
fetched, judged later by :mod:`agent.pki.modes`), records protocol, cipher, the whole served
chain (pyOpenSSL's ``get_peer_cert_chain``; the stdlib has it only from Python 3.13), and
whether the server asked for a client certificate (its CertificateRequest, seen through the
handshake state callback). It then sends one ``GET /``: TLS 1.3 servers that *require* a client
certificate say so only after the handshake (an alert, or nginx's HTTP 400
"No required SSL certificate was sent").

:func:`served_leaf` only looks at the served leaf (standard library, one shared context): the
cheap repeated look of a verification. Contexts are shared between probes; neither kind resumes
a TLS session, so every handshake shows the certificate actually served.

:func:`probe_http` asks plain HTTP (port 80: the ACME path, the redirect, or Flexible mode).
Every step is bounded by ``timeout`` (one deadline per connection).
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

from agent.pki.plainhttp import (
    HOST_HEADER,
    HttpAnswer,
    Outcome,
    bracketed,
    connect_bounded,
    is_ip,
    probe_http,
    status_of,
)
from agent.secret import Secret

__all__ = [
    "ClientCertificate",
    "HttpAnswer",
    "Outcome",
    "Served",
    "probe",
    "probe_http",
    "served_leaf",
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


def _reason(err: BaseException) -> str:
    """One line from a pyOpenSSL error: the OpenSSL reason strings, or the exception text."""
    if isinstance(err, SSL.Error) and err.args and isinstance(err.args[0], list):
        reasons = [str(e[2]) for e in err.args[0] if isinstance(e, tuple) and len(e) == 3]
        if reasons:
            return "; ".join(reasons)
    return str(err) or type(err).__name__


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


def _on_info(conn: SSL.Connection, where: int, ret: int) -> None:
    """The server asked for a client certificate: noted on the probe that owns ``conn``."""
    talk = conn.get_app_data()
    if isinstance(talk, _Handshake) and _CERT_REQUEST_STATE in conn.get_state_string():
        talk.requested.append(True)


_shared: dict[tuple[str | None, str | None], SSL.Context] = {}
_shared_lock = threading.Lock()


def _context(
    client_cert: ClientCertificate | None, min_version: str | None, max_version: str | None
) -> SSL.Context:
    """The context of one probe. Without a client certificate it is shared by every probe
    with the same versions (making one costs more than the handshake's own client side)."""
    if client_cert is None:
        with _shared_lock:
            ctx = _shared.get((min_version, max_version))
            if ctx is None:
                ctx = _shared[(min_version, max_version)] = _new_context(
                    None, min_version, max_version
                )
        return ctx
    return _new_context(client_cert, min_version, max_version)


def _new_context(
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
    ctx.set_info_callback(_on_info)
    return ctx


_leaf_context: ssl.SSLContext | None = None


def served_leaf(address: str, port: int, sni: str | None, *, timeout: float) -> bytes | None:
    """The leaf certificate (DER) served to ``sni``, from one handshake made with the standard
    library and one shared context: no chain, no client-certificate request, no HTTP. Enough
    for a repeated look at which certificate is served; ``None`` when no handshake completed
    (then :func:`probe` tells why)."""
    global _leaf_context
    with _shared_lock:
        if _leaf_context is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            _leaf_context = ctx
        ctx = _leaf_context
    server_hostname = sni if sni and not is_ip(sni) else None
    try:
        with (
            socket.create_connection((address, port), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=server_hostname) as tls,
        ):
            return tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError, ValueError, UnicodeError):
        return None


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
    sock = connect_bounded(address, port, deadline)
    if isinstance(sock, tuple):
        return Served(address, port, sni, sock[0], error=sock[1])
    talk = _Handshake(address, port, sni, sock, deadline, client_cert)
    conn = talk.open(_context(client_cert, min_version, max_version))
    try:
        try:
            _call(conn, sock, deadline, "do_handshake")
        except TimeoutError:
            return talk.served("timeout", f"TLS handshake with {address}:{port} timed out")
        except (SSL.Error, OSError) as err:
            return talk.failed_handshake(err)
        if not http_request:
            return talk.served("ok")
        return talk.request()
    finally:
        conn.set_app_data(None)
        sock.close()


class _Handshake:
    """One probe's connection: what it saw, and how each way it can end is reported."""

    def __init__(
        self,
        address: str,
        port: int,
        sni: str | None,
        sock: socket.socket,
        deadline: float,
        client_cert: ClientCertificate | None,
    ) -> None:
        self.address, self.port, self.sni = address, port, sni
        self.sock, self.deadline, self.client_cert = sock, deadline, client_cert
        self.requested: list[bool] = []
        self.conn: SSL.Connection | None = None

    def open(self, ctx: SSL.Context) -> SSL.Connection:
        conn = SSL.Connection(ctx, self.sock)
        conn.set_app_data(self)  # for _on_info
        if self.sni and not is_ip(self.sni):  # RFC 6066: no IP literals in SNI
            conn.set_tlsext_host_name(self.sni.encode("idna"))
        conn.set_connect_state()
        self.conn = conn
        return conn

    def served(self, outcome: Outcome, error: str = "", status: int | None = None) -> Served:
        conn = self.conn
        assert conn is not None
        chain = conn.get_peer_cert_chain(as_cryptography=True) or []
        version = conn.get_protocol_version_name()
        return Served(
            self.address,
            self.port,
            self.sni,
            outcome,
            error=error,
            protocol=version
            if outcome not in ("plain_http", "not_tls", "handshake_failed") and version != "unknown"
            else "",
            cipher=conn.get_cipher_name() or "",
            chain_der=tuple(c.public_bytes(serialization.Encoding.DER) for c in chain),
            client_cert_requested=bool(self.requested),
            client_ca_names=tuple(
                n.rfc4514_string() for n in conn.get_client_ca_list(as_cryptography=True)
            ),
            client_cert_sent=self.client_cert is not None and bool(self.requested),
            http_status=status,
        )

    def refused_client(self, reason: str, status: int | None = None) -> Served:
        outcome: Outcome = (
            "client_cert_required" if self.client_cert is None else "client_cert_rejected"
        )
        return self.served(outcome, reason, status)

    def failed_handshake(self, err: Exception) -> Served:
        reason = _reason(err)
        if self.requested:
            return self.refused_client(reason)
        if any(r in reason.lower() for r in _NOT_TLS_REASONS) or isinstance(err, SSL.SysCallError):
            answer = probe_http(
                self.address,
                self.port,
                self.sni or self.address,
                timeout=max(self.deadline - time.monotonic(), 0.5),
            )
            if answer.status is not None:
                what = f"{self.address}:{self.port} speaks plain HTTP"
                return self.served("plain_http", what, answer.status)
            return self.served("not_tls", reason)
        return self.served("handshake_failed", reason)

    def request(self) -> Served:
        """``GET /`` over the handshake: what the server answers tells a refused client
        certificate (nginx's HTTP 400) apart from a served site."""
        host = self.sni or self.address
        if not HOST_HEADER.fullmatch(bracketed(host)):
            return self.served("ok", "request not sent: the Host value is not a host name")
        try:
            data = self._exchange(host)
        except SSL.ZeroReturnError:
            data = b""
        except (SSL.Error, OSError) as err:
            if self.requested:
                return self.refused_client(_reason(err))
            return self.served("ok", f"request failed: {_reason(err)}")
        except TimeoutError:
            return self.served("ok", "no HTTP answer before the timeout")
        status = status_of(data)
        if status == 400 and self.requested and b"SSL certificate" in data:  # nginx's refusal
            if self.client_cert is None:
                return self.refused_client("HTTP 400: no client certificate sent", status)
            return self.refused_client("HTTP 400: client certificate refused", status)
        return self.served("ok", "", status)

    def _exchange(self, host: str) -> bytes:
        conn, sock, deadline = self.conn, self.sock, self.deadline
        assert conn is not None
        request = (
            f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: origin-agent-probe\r\n"
            "Connection: close\r\n\r\n"
        )
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
        return data
