"""Test double: an HTTPS front that adds ACME Renewal Information (RFC 9773) to a real pebble.

Debian's pebble 2.4 has no ``renewalInfo``. This front forwards every request to pebble
unchanged (keeping the ``Host`` header, so pebble builds its URLs, and checks the JWS ``url``,
against the front's address), adds ``renewalInfo`` to the directory, and answers
``GET /renewal-info/{certID}`` with the window the test set through :meth:`AriFront.set_window`
(404 for a certificate without one), with the test's ``Retry-After``.

It records every request (:attr:`AriFront.requests`: method and path) so tests can count
what a run asked of the CA, and the payload of each newOrder (:attr:`AriFront.orders`) so they
can see ``replaces``.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import http.server
import json
import ssl
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


def _rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AriFront:
    """Pebble behind an ARI-adding HTTPS front on 127.0.0.1 (a test double, not a CA)."""

    def __init__(self, pebble_port: int, tls_dir: Path, tls_ca: Path) -> None:
        self.pebble_port = pebble_port
        self._upstream_tls = ssl.create_default_context(cafile=str(tls_ca))
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.orders: list[dict[str, Any]] = []
        self.windows: dict[str, tuple[dt.datetime, dt.datetime]] = {}
        self.retry_after = "3600"
        self.new_order_path = ""
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                front._handle(self)

            def do_HEAD(self) -> None:
                front._handle(self)

            def do_POST(self) -> None:
                front._handle(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(tls_dir / "cert.pem", tls_dir / "key.pem")
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def set_window(self, cert_id: str, start: dt.datetime, end: dt.datetime) -> None:
        with self._lock:
            self.windows[cert_id] = (start, end)

    def count(self) -> int:
        """Requests seen so far."""
        with self._lock:
            return len(self.requests)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # -- serving ---------------------------------------------------------------------------

    def _handle(self, req: http.server.BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        path = urlsplit(req.path).path
        with self._lock:
            self.requests.append((req.command, path))
        if req.command == "GET" and path.startswith("/renewal-info/"):
            self._renewal_info(req, path.rsplit("/", 1)[-1])
            return
        if req.command == "POST" and path == self.new_order_path:
            self._record_order(body)
        status, headers, answer = self._forward(req, body)
        if req.command == "GET" and path == "/dir" and status == 200:
            directory = json.loads(answer)
            directory["renewalInfo"] = f"https://127.0.0.1:{self.port}/renewal-info"
            self.new_order_path = urlsplit(directory["newOrder"]).path
            answer = json.dumps(directory).encode()
        self._send(req, status, headers, answer)

    def _forward(
        self, req: http.server.BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.pebble_port, context=self._upstream_tls, timeout=30
        )
        try:
            headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_BY_HOP}
            conn.request(req.command, req.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def _renewal_info(self, req: http.server.BaseHTTPRequestHandler, cert_id: str) -> None:
        with self._lock:
            window = self.windows.get(cert_id)
        if window is None:
            problem = {"type": "urn:ietf:params:acme:error:malformed", "detail": "unknown cert"}
            self._send(
                req,
                404,
                [("Content-Type", "application/problem+json")],
                json.dumps(problem).encode(),
            )
            return
        start, end = window
        answer = {"suggestedWindow": {"start": _rfc3339(start), "end": _rfc3339(end)}}
        headers = [("Content-Type", "application/json"), ("Retry-After", self.retry_after)]
        self._send(req, 200, headers, json.dumps(answer).encode())

    def _record_order(self, body: bytes) -> None:
        try:
            payload = json.loads(body)["payload"]
            order = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, KeyError, TypeError):
            return
        with self._lock:
            self.orders.append(order)

    @staticmethod
    def _send(
        req: http.server.BaseHTTPRequestHandler,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        req.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                req.send_header(name, value)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(body)
