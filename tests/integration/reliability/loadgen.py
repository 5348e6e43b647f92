"""A small HTTPS load generator for loopback lab hosts: threads that open a fresh TLS
connection per request, and threads that keep one connection alive across requests."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

PACE = 0.005  # seconds between two keep-alive requests: load, not a CPU hog starving the run


@dataclass(frozen=True)
class Target:
    address: str
    sni: str
    port: int = 443


@dataclass
class Tally:
    sent: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, error: str | None) -> None:
        with self.lock:
            self.sent += 1
            if error is not None:
                self.failed += 1
                self.errors[error] += 1


def _context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the certificate changes under load: only availability counts
    return ctx


def _read_response(tls: ssl.SSLSocket, buf: bytearray) -> None:
    """Read one HTTP/1.1 response (status line, headers, Content-Length body) from ``tls``."""
    while b"\r\n\r\n" not in buf:
        chunk = tls.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the headers")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 "):
        raise ConnectionError(f"not HTTP: {head[:20]!r}")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = tls.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        rest += chunk
    buf[:] = rest[length:]


def _request(target: Target, close: bool) -> bytes:
    conn = "close" if close else "keep-alive"
    return f"GET / HTTP/1.1\r\nHost: {target.sni}\r\nConnection: {conn}\r\n\r\n".encode()


def fresh_worker(targets: list[Target], tally: Tally, stop: threading.Event) -> None:
    ctx = _context()
    i = 0
    while not stop.is_set():
        target = targets[i % len(targets)]
        i += 1
        error = None
        try:
            with socket.create_connection((target.address, target.port), timeout=5) as sock:
                with ctx.wrap_socket(sock, server_hostname=target.sni) as tls:
                    tls.sendall(_request(target, close=True))
                    _read_response(tls, bytearray())
        except (OSError, ValueError) as err:
            error = f"{target.address} {type(err).__name__}: {err}"[:120]
        tally.add(error)


def keepalive_worker(target: Target, tally: Tally, stop: threading.Event) -> None:
    ctx = _context()
    tls: ssl.SSLSocket | None = None
    buf = bytearray()
    while not stop.is_set():
        error = None
        try:
            if tls is None:
                sock = socket.create_connection((target.address, target.port), timeout=5)
                tls = ctx.wrap_socket(sock, server_hostname=target.sni)
                buf = bytearray()
            tls.sendall(_request(target, close=False))
            _read_response(tls, buf)
        except (OSError, ValueError) as err:
            error = f"{target.address} {type(err).__name__}: {err}"[:120]
            if tls is not None:
                tls.close()
            tls = None
        tally.add(error)
        time.sleep(0.05 if error else PACE)
    if tls is not None:
        tls.close()


class Load:
    """``with Load(targets, fresh_threads=4) as load: ...``; tallies in ``load.fresh`` and
    ``load.keepalive``. Bounded by the ``with`` block."""

    def __init__(self, targets: list[Target], fresh_threads: int = 3) -> None:
        self.targets = targets
        self.fresh, self.keepalive = Tally(), Tally()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(
                target=fresh_worker, args=(targets, self.fresh, self.stop), daemon=True
            )
            for _ in range(fresh_threads)
        ]
        self.threads += [
            threading.Thread(
                target=keepalive_worker, args=(t, self.keepalive, self.stop), daemon=True
            )
            for t in targets
        ]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
