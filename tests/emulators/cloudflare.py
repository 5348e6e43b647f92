"""A Cloudflare v4 API emulator for the Origin CA and the zone SSL-mode setting.

It serves, over real HTTPS (or HTTP) on 127.0.0.1 in a thread, what
/work/shared/reference/cloudflare-origin-ca.md documents:

- ``POST /client/v4/certificates`` ``{csr, hostnames, request_type, requested_validity}``: signs
  the CSR with a real Origin CA root (RSA or ECC by ``request_type``), subject
  ``O=CloudFlare, Inc., OU=CloudFlare Origin CA, CN=CloudFlare Origin Certificate``, SANs from
  ``hostnames``; ``id`` is the serial number (decimal).
- ``GET /certificates?zone_id=`` (paged, ``result_info``; 1012 without ``zone_id``),
  ``GET /certificates/{id}``, ``DELETE /certificates/{id}`` -> ``{id, revoked_at}``.
- ``GET``/``PATCH /zones/{zone_id}/settings/ssl``
  ``{"value": off|flexible|full|strict|origin_pull}``.
- Auth: ``Authorization: Bearer <token>``, or ``X-Auth-User-Service-Key`` (Origin CA endpoints
  only). Errors use the v4 envelope ``{success: false, errors: [{code, message}], ...}`` with the
  documented codes (10000 auth, 1010 hostname not in the account's zones, 1012, 1100 transient).
  Codes for cases the reference does not document are this emulator's choice.

Tests steer it with :meth:`CloudflareEmulator.fail_next` (canned answers, JSON or garbage),
:meth:`~CloudflareEmulator.transient_next` (1100 "Failed to write certificate to Database") and
read :attr:`~CloudflareEmulator.seen` (method, path, headers of each request).
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import re
import secrets
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITIES = (7, 30, 90, 365, 730, 1095, 5475)
REQUEST_TYPES = ("origin-rsa", "origin-ecc", "keyless-certificate")
SSL_MODES = ("off", "flexible", "full", "strict", "origin_pull")
_PREFIX = "/client/v4"


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _root(kind: str) -> tuple[x509.Certificate, Any]:
    key: Any = (
        ec.generate_private_key(ec.SECP384R1())
        if kind == "ecc"
        else rsa.generate_private_key(65537, 2048)
    )
    ou = (
        "CloudFlare Origin SSL ECC Certificate Authority"
        if kind == "ecc"
        else "CloudFlare Origin SSL Certificate Authority"
    )
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CloudFlare, Inc."),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "San Francisco"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=6000))
        .add_extension(x509.BasicConstraints(ca=True, path_length=2), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _go_time(when: dt.datetime) -> str:
    """Go's ``time.Time.String()`` layout, which cloudflare-go parses first."""
    return when.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


@dataclass
class Canned:
    status: int
    body: bytes
    content_type: str


class CloudflareEmulator:
    """Run with ``with CloudflareEmulator(...) as cf:``; ``cf.base_url`` is the API root."""

    def __init__(
        self,
        *,
        zones: dict[str, str] | None = None,
        tokens: tuple[str, ...] = (),
        service_keys: tuple[str, ...] = (),
        tls: bool = True,
    ) -> None:
        self.zones = zones or {secrets.token_hex(16): "example.test"}  # zone_id -> zone name
        self.tokens = set(tokens or ("cf-test-token-" + secrets.token_hex(8),))
        self.service_keys = set(service_keys or ("v1.0-" + secrets.token_hex(24),))
        self.tls = tls
        self.roots = {"ecc": _root("ecc"), "rsa": _root("rsa")}
        self.certificates: dict[str, dict[str, Any]] = {}
        self.ssl_modes = {zone_id: "full" for zone_id in self.zones}
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self._canned: list[Canned] = []
        self._transient = 0
        self._lock = threading.Lock()
        self._dir: Path | None = None
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.ca_bundle: str | None = None  # PEM of the CA that signed the emulator's TLS cert

    # --- test controls -------------------------------------------------------------------

    @property
    def token(self) -> str:
        return sorted(self.tokens)[0]

    @property
    def service_key(self) -> str:
        return sorted(self.service_keys)[0]

    @property
    def zone_id(self) -> str:
        return sorted(self.zones)[0]

    def root_pem(self, kind: str) -> str:
        """The Origin CA root (``ecc`` or ``rsa``) as PEM."""
        return self.roots[kind][0].public_bytes(serialization.Encoding.PEM).decode()

    def fail_next(
        self,
        status: int,
        body: bytes | dict[str, Any],
        count: int = 1,
        content_type: str = "application/json",
    ) -> None:
        """Answer the next ``count`` requests with ``status`` and ``body`` (a dict is JSON)."""
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        with self._lock:
            self._canned += [Canned(status, raw, content_type)] * count

    def clear_failures(self) -> None:
        """Forget canned answers and pending transient failures."""
        with self._lock:
            self._canned.clear()
            self._transient = 0

    def transient_next(self, count: int = 1) -> None:
        """The next ``count`` certificate creations fail with code 1100 (retryable)."""
        with self._lock:
            self._transient += count

    @property
    def base_url(self) -> str:
        assert self._server is not None, "emulator not started"
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}{_PREFIX}"

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> CloudflareEmulator:
        emulator = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                emulator._serve(self)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls:
            self._dir = Path(tempfile.mkdtemp(prefix="cf-emulator-"))
            self.ca_bundle = str(self._write_tls_files(self._dir))
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self._dir / "cert.pem", self._dir / "key.pem")
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> CloudflareEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def _write_tls_files(directory: Path) -> Path:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulator tls ca")])
        now = dt.datetime.now(dt.UTC)
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
            .sign(ca_key, hashes.SHA256())
        )
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        (directory / "cert.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        (directory / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        return directory / "ca.pem"

    # --- request handling ----------------------------------------------------------------

    def _serve(self, req: http.server.BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        with self._lock:
            self.seen.append((req.command, req.path, dict(req.headers.items())))
            canned = self._canned.pop(0) if self._canned else None
        if canned is not None:
            self._send(req, canned.status, canned.body, canned.content_type)
            return
        try:
            status, result, extra = self._route(req, raw)
            body: dict[str, Any] = {
                "success": True,
                "errors": [],
                "messages": [],
                "result": result,
                **extra,
            }
        except ApiError as err:
            status = err.status
            body = {
                "success": False,
                "errors": [{"code": err.code, "message": err.message}],
                "messages": [],
                "result": None,
            }
        self._send(req, status, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _send(
        req: http.server.BaseHTTPRequestHandler, status: int, body: bytes, content_type: str
    ) -> None:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def _auth(self, req: http.server.BaseHTTPRequestHandler, *, service_key_ok: bool) -> None:
        bearer = req.headers.get("Authorization", "")
        service_key = req.headers.get("X-Auth-User-Service-Key")
        if bearer.startswith("Bearer ") and bearer[7:] in self.tokens:
            return
        if service_key_ok and service_key is not None and service_key in self.service_keys:
            return
        if not bearer and service_key is None:
            raise ApiError(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
        raise ApiError(400, 10000, "Authentication error")

    def _route(
        self, req: http.server.BaseHTTPRequestHandler, raw: bytes
    ) -> tuple[int, Any, dict[str, Any]]:
        url = urlsplit(req.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if not url.path.startswith(_PREFIX):
            raise ApiError(400, 7000, "No route for that URI")
        path, method = url.path[len(_PREFIX) :], req.command
        if path == "/certificates" and method in ("POST", "GET"):
            self._auth(req, service_key_ok=True)
            if method == "POST":
                return 200, self._create(self._json(raw)), {}
            return self._list(query)
        match = re.fullmatch(r"/certificates/([^/]+)", path)
        if match and method in ("GET", "DELETE"):
            self._auth(req, service_key_ok=True)
            record = self.certificates.get(match.group(1))
            if record is None:
                raise ApiError(404, 1003, "Certificate not found")  # emulator's choice
            if method == "GET":
                return 200, record, {}
            record["revoked_at"] = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
            return 200, {"id": record["id"], "revoked_at": record["revoked_at"]}, {}
        match = re.fullmatch(r"/zones/([^/]+)/settings/ssl", path)
        if match and method in ("GET", "PATCH"):
            self._auth(req, service_key_ok=False)
            zone_id = match.group(1)
            if zone_id not in self.zones:
                raise ApiError(
                    400,
                    7003,
                    f"Could not route to /zones/{zone_id}/settings/ssl, "
                    "perhaps your object identifier is invalid?",
                )
            if method == "PATCH":
                value = self._json(raw).get("value")
                if value not in SSL_MODES:
                    raise ApiError(400, 1007, "Invalid value for zone setting ssl")
                self.ssl_modes[zone_id] = value
            return (
                200,
                {
                    "id": "ssl",
                    "value": self.ssl_modes[zone_id],
                    "editable": True,
                    "modified_on": dt.datetime.now(dt.UTC).isoformat(),
                },
                {},
            )
        if match or path.startswith("/certificates"):
            raise ApiError(405, 10405, "Method not allowed for this route")  # emulator's choice
        raise ApiError(400, 7000, "No route for that URI")

    @staticmethod
    def _json(raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiError(400, 6007, "Malformed JSON in request body") from None
        if not isinstance(body, dict):
            raise ApiError(400, 6007, "Malformed JSON in request body")
        return body

    def _zone_of(self, hostname: str) -> str | None:
        bare = hostname[2:] if hostname.startswith("*.") else hostname
        for zone_id, zone in self.zones.items():
            if bare == zone or bare.endswith("." + zone):
                return zone_id
        return None

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        csr_pem, hostnames = body.get("csr"), body.get("hostnames")
        request_type = body.get("request_type")
        validity = body.get("requested_validity", 5475)
        if not isinstance(hostnames, list) or not hostnames or len(hostnames) > 200:
            raise ApiError(400, 1005, "hostnames must be a list of 1 to 200 names")  # choice
        if request_type not in REQUEST_TYPES:
            raise ApiError(
                400, 1006, "request_type must be origin-rsa, origin-ecc or keyless-certificate"
            )  # emulator's choice
        if validity not in VALIDITIES:
            raise ApiError(
                400, 1007, "requested_validity must be one of " + ", ".join(map(str, VALIDITIES))
            )  # emulator's choice
        for name in hostnames:
            if (
                not isinstance(name, str)
                or self._zone_of(name) is None
                or "*" in name[2:]
                or re.fullmatch(r"[0-9.:]+", name)
            ):
                raise ApiError(
                    400,
                    1010,
                    f"Failed to validate requested hostname {name}: This "
                    "zone is either not part of your account, or you do not have "
                    "access to it. Please contact support if using a multi-user "
                    "organization.",
                )
        try:
            csr = x509.load_pem_x509_csr(str(csr_pem).encode())
            if not csr.is_signature_valid:
                raise ValueError
        except ValueError:
            raise ApiError(400, 1002, "Invalid CSR") from None  # emulator's choice
        with self._lock:
            if self._transient:
                self._transient -= 1
                raise ApiError(400, 1100, "Failed to write certificate to Database")
        root_cert, root_key = self.roots["rsa" if request_type == "origin-rsa" else "ecc"]
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CloudFlare, Inc."),
                        x509.NameAttribute(
                            NameOID.ORGANIZATIONAL_UNIT_NAME, "CloudFlare Origin CA"
                        ),
                        x509.NameAttribute(NameOID.COMMON_NAME, "CloudFlare Origin Certificate"),
                    ]
                )
            )
            .issuer_name(root_cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=validity))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                False,
            )
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in hostnames]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
            )
            .sign(root_key, hashes.SHA256())
        )
        record = {
            "id": str(cert.serial_number),
            "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "hostnames": hostnames,
            "expires_on": _go_time(cert.not_valid_after_utc),
            "request_type": request_type,
            "requested_validity": validity,
            "csr": csr_pem,
        }
        with self._lock:
            self.certificates[record["id"]] = record
        return record

    def _list(self, query: dict[str, str]) -> tuple[int, Any, dict[str, Any]]:
        zone_id = query.get("zone_id")
        if not zone_id:
            raise ApiError(
                400,
                1012,
                "Please provide a zone id when requesting a stored "
                "certificate, or fetch by serial number",
            )
        try:
            page = max(1, int(query.get("page", 1)))
            per_page = min(50, max(5, int(query.get("per_page", 20))))
        except ValueError:
            raise ApiError(400, 1004, "page and per_page must be integers") from None  # choice
        rows = [
            r
            for r in self.certificates.values()
            if "revoked_at" not in r and any(self._zone_of(h) == zone_id for h in r["hostnames"])
        ]
        chunk = rows[(page - 1) * per_page : page * per_page]
        pages = max(1, -(-len(rows) // per_page))
        info = {
            "page": page,
            "per_page": per_page,
            "count": len(chunk),
            "total_count": len(rows),
            "total_pages": pages,
        }
        return 200, chunk, {"result_info": info}
