"""Real certificate authorities on loopback for integration tests, started and stopped by PID.

- :class:`Pebble` (Debian's ``pebble`` + ``pebble-challtestsrv`` as its DNS): an ACME server whose
  http-01 validation goes to ``responder_address:http_port``.
- :class:`WebrootResponder` + :class:`WebrootPublisher`: a tiny HTTP server thread serving a temp
  webroot, and the ChallengePublisher writing into it.
- :class:`CfsslServer`: ``cfssl serve`` signing with an intermediate CA made here, with an
  unauthenticated profile ``server`` and an HMAC-authenticated profile ``server-auth``;
  :class:`MultirootCA`: ``multirootca`` over the same files.
- :func:`make_csr`: a CSR with cryptography (certificates come from :mod:`tests.tlscerts`).
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.tlscerts import fresh, make_ca, make_leaf


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``address``."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    address: str,
    port: int,
    proc: subprocess.Popen[bytes] | None,
    log: Path | None,
    timeout: float = 15.0,
) -> None:
    """Wait (bounded) until ``address:port`` accepts TCP connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}: {tail}")
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {address}:{port} after {timeout}s")


class Process:
    """A child process with its output in a log file; :meth:`stop` ends exactly that PID."""

    def __init__(
        self, argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                stdin=subprocess.DEVNULL,
            )
        self.pid = self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_csr(names: list[str], *, rsa_key: bool = False) -> tuple[str, Any]:
    """``(CSR PEM, private key)`` for ``names`` (first name is the CN; all in the SAN)."""
    key: Any = (
        rsa.generate_private_key(65537, 2048)
        if rsa_key
        else ec.generate_private_key(ec.SECP256R1())
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(names[0]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key


def write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def tls_server_files(directory: Path, names: list[str], ips: list[str]) -> Path:
    """Write ``cert.pem``, ``key.pem`` (signed by a fresh CA) and ``tls-ca.pem``; return the CA
    path."""
    ca = make_ca("test tls ca", start=fresh(), days=365)
    leaf = make_leaf(names, issuer=ca, ips=ips, start=fresh(), days=30)
    (directory / "cert.pem").write_text(leaf.cert_pem)
    write_private(directory / "key.pem", leaf.key_pem.encode())
    (directory / "tls-ca.pem").write_text(ca.cert_pem)
    return directory / "tls-ca.pem"


# --- http-01 responder -------------------------------------------------------------------


class WebrootResponder:
    """Serve ``webroot`` over plain HTTP on ``address:port`` in a thread."""

    def __init__(self, webroot: Path, address: str, port: int) -> None:
        root = str(webroot)

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=root, **kwargs)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class WebrootPublisher:
    """A ChallengePublisher writing into a local webroot; records what it did."""

    def __init__(self, webroot: Path) -> None:
        self.webroot = webroot
        self.published: list[str] = []
        self.unpublished: list[str] = []

    def _file(self, path: str) -> Path:
        assert path.startswith("/.well-known/acme-challenge/") and ".." not in path
        return self.webroot / path.lstrip("/")

    def publish(self, path: str, content: str) -> None:
        target = self._file(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        self.published.append(path)

    def unpublish(self, path: str) -> None:
        self._file(path).unlink(missing_ok=True)
        self.unpublished.append(path)


# --- pebble ----------------------------------------------------------------------------


class Pebble:
    """pebble + pebble-challtestsrv on loopback; every name resolves to ``responder_address``."""

    def __init__(
        self,
        workdir: Path,
        responder_address: str,
        http_port: int,
        env: dict[str, str] | None = None,
        eab_keys: dict[str, str] | None = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.tls_ca = tls_server_files(workdir, ["localhost"], ["127.0.0.1"])
        self.port, self.mgmt_port = free_port(), free_port()
        self.dns_port, self.dns_mgmt_port = free_port(), free_port()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
                "certificate": str(workdir / "cert.pem"),
                "privateKey": str(workdir / "key.pem"),
                "httpPort": http_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": bool(eab_keys),
                "externalAccountMACKeys": eab_keys or {},
            }
        }
        (workdir / "pebble-config.json").write_text(json.dumps(config))
        self.processes: list[Process] = []
        try:
            dns = Process(
                [
                    "pebble-challtestsrv",
                    "-dns01",
                    f"127.0.0.1:{self.dns_port}",
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                    "-management",
                    f"127.0.0.1:{self.dns_mgmt_port}",
                    "-defaultIPv4",
                    responder_address,
                    "-defaultIPv6",
                    "",
                ],
                workdir / "challtestsrv.log",
            )
            self.processes.append(dns)
            wait_for_port("127.0.0.1", self.dns_mgmt_port, dns.proc, dns.log)
            pebble_env = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", **(env or {})}
            pebble = Process(
                [
                    "pebble",
                    "-config",
                    str(workdir / "pebble-config.json"),
                    "-dnsserver",
                    f"127.0.0.1:{self.dns_port}",
                ],
                workdir / "pebble.log",
                env=pebble_env,
                cwd=workdir,
            )
            self.processes.append(pebble)
            wait_for_port("127.0.0.1", self.port, pebble.proc, pebble.log)
            wait_for_port("127.0.0.1", self.mgmt_port, pebble.proc, pebble.log)
        except BaseException:
            self.stop()
            raise

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def management(self, path: str) -> bytes:
        import ssl
        import urllib.request

        ctx = ssl.create_default_context(cafile=str(self.tls_ca))
        url = f"https://127.0.0.1:{self.mgmt_port}{path}"
        with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
            return bytes(resp.read())

    def root_pem(self) -> str:
        return self.management("/roots/0").decode()

    def cert_status(self, serial: int) -> dict[str, Any]:
        return dict(json.loads(self.management(f"/cert-status-by-serial/{serial:x}")))

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()


# --- cfssl -----------------------------------------------------------------------------


# cfssl's certdb tables (its sqlite migrations); cfssl serve does not create them itself.
CFSSL_DB_SCHEMA = """
CREATE TABLE certificates (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  ca_label                 blob,
  status                   blob NOT NULL,
  reason                   int,
  expiry                   timestamp,
  revoked_at               timestamp,
  pem                      blob NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier)
);
CREATE TABLE ocsp_responses (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  body                     blob NOT NULL,
  expiry                   timestamp,
  PRIMARY KEY(serial_number, authority_key_identifier),
  FOREIGN KEY(serial_number, authority_key_identifier)
    REFERENCES certificates(serial_number, authority_key_identifier)
);
"""


class CfsslServer:
    """``cfssl serve`` on loopback, signing with an intermediate under :attr:`root`."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.root = make_ca("Test Origin Root CA", start=fresh(), days=365, path_length=1)
        self.signer = make_ca(
            "Test Origin Signing CA", parent=self.root, start=fresh(), days=180, path_length=0
        )
        (workdir / "ca.pem").write_text(self.signer.cert_pem)
        write_private(workdir / "ca-key.pem", self.signer.key_pem_traditional)
        self.auth_key_file = workdir / "auth.key"
        write_private(self.auth_key_file, secrets.token_hex(16).encode())  # no newline
        usages = ["digital signature", "key encipherment", "server auth"]
        config = {
            "signing": {
                "default": {"expiry": "168h", "usages": usages},
                "profiles": {
                    "server": {"expiry": "2160h", "usages": usages},
                    "server-auth": {"expiry": "2160h", "usages": usages, "auth_key": "agent"},
                    "restricted": {
                        "expiry": "2160h",
                        "usages": usages,
                        "name_whitelist": "^only\\.example\\.test$",
                    },
                },
            },
            "auth_keys": {"agent": {"type": "standard", "key": f"file:{self.auth_key_file}"}},
        }
        (workdir / "config.json").write_text(json.dumps(config))
        self.db = workdir / "certs.db"  # the certificate database /revoke works on
        with sqlite3.connect(self.db) as db:
            db.executescript(CFSSL_DB_SCHEMA)
        (workdir / "db.json").write_text(
            json.dumps({"driver": "sqlite3", "data_source": str(self.db)})
        )
        self.port = free_port()
        self.process = Process(
            [
                "cfssl",
                "serve",
                "-address",
                "127.0.0.1",
                "-port",
                str(self.port),
                "-ca",
                str(workdir / "ca.pem"),
                "-ca-key",
                str(workdir / "ca-key.pem"),
                "-config",
                str(workdir / "config.json"),
                "-db-config",
                str(workdir / "db.json"),
            ],
            workdir / "cfssl.log",
        )
        try:
            wait_for_port("127.0.0.1", self.port, self.process.proc, self.process.log)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.stop()


class MultirootCA:
    """``multirootca`` (authenticated signing only) over the files of a :class:`CfsslServer`,
    with one signer labelled ``primary``."""

    def __init__(self, cfssl: CfsslServer, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        base = cfssl.workdir
        (workdir / "roots.ini").write_text(
            "[ primary ]\n"
            f"private = file://{base / 'ca-key.pem'}\n"
            f"certificate = {base / 'ca.pem'}\n"
            f"config = {base / 'config.json'}\n"
            "nets = 127.0.0.0/8\n"
        )
        self.port = free_port()
        self.process = Process(
            [
                "multirootca",
                "-a",
                f"127.0.0.1:{self.port}",
                "-roots",
                str(workdir / "roots.ini"),
                "-l",
                "primary",
            ],
            workdir / "multirootca.log",
        )
        try:
            wait_for_port("127.0.0.1", self.port, self.process.proc, self.process.log)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.stop()


def verify_chain(leaf_pem: str, chain_pem: str, root_pem: str, name: str) -> None:
    """Verify leaf -> chain -> root for TLS server use of ``name`` with cryptography."""
    from cryptography.x509.verification import PolicyBuilder, Store

    def load(pem: str) -> list[x509.Certificate]:
        return x509.load_pem_x509_certificates(pem.encode()) if pem.strip() else []

    store = Store(load(root_pem))
    verifier = PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name))
    verifier.verify(load(leaf_pem)[0], load(chain_pem))
