"""`status` against a real TLS server on loopback (Python's ssl, started and stopped here):
templated ``tls_names`` are probed and judged rendered, and judged by the edge's default trust
plus what ``--trust`` and the host's issuer add."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.inventory import Host
from agent.jobs import status
from agent.modules.tls import services
from agent.pki.trust import origin_ca_roots
from tests.integration.cas import free_port
from tests.tlscerts import NOW, Issued, make_ca, make_leaf, make_look_alike

pytestmark = pytest.mark.integration

NAME = "web01.eu.example.test"


class TlsServer:
    """Serves one certificate chain on 127.0.0.1 and answers any request with 200."""

    def __init__(self, directory: Path, chain: list[Issued]) -> None:
        (directory / "chain.pem").write_text("".join(c.cert_pem for c in chain))
        (directory / "key.pem").write_text(chain[0].key_pem)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(directory / "chain.pem", directory / "key.pem")
        self.port = free_port()
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as conn:
                    conn.settimeout(2)
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass
            finally:
                raw.close()

    def stop(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    started: list[TlsServer] = []

    def start(chain: list[Issued]) -> TlsServer:
        server = TlsServer(tmp_path, chain)
        started.append(server)
        return server

    services.configure(state_dir=str(tmp_path / "state"), base_dir=str(tmp_path))
    yield start
    for server in started:
        server.stop()
    services.configure(state_dir=None, base_dir=".")


def _host(port: int, **more: object) -> Host:
    return Host(
        NAME,
        {
            "tls_names": ["{{ inventory_hostname }}"],
            "ansible_host": "127.0.0.1",
            "https_port": port,
            "http_port": free_port(),  # nothing listens: no plain HTTP
            **more,
        },
    )


def test_status_probes_and_judges_the_rendered_names(serve: object, tmp_path: Path) -> None:
    root = make_ca("Status Root")
    inter = make_ca("Status Intermediate", parent=root)
    server = serve([make_leaf([NAME], issuer=inter), inter])  # type: ignore[operator]
    (tmp_path / "root.pem").write_text(root.cert_pem)
    host = _host(server.port, issuer={"backend": "selfsigned", "trust": "root.pem"})
    (row,) = status.collect([host], now=NOW, use_state=False)
    assert row.name == NAME
    assert row.mode == "strict", row.reasons
    assert not any("name mismatch" in r for r in row.reasons)


def test_status_judges_a_look_alike_origin_ca_by_the_edges_trust(
    serve: object, tmp_path: Path
) -> None:
    fake = make_look_alike(origin_ca_roots()[1])
    server = serve([make_leaf([NAME], issuer=fake)])  # type: ignore[operator]
    (row,) = status.collect([_host(server.port)], now=NOW, use_state=False)
    assert row.mode == "full"
    assert row.reasons[0].startswith("untrusted chain: no path from issuer ")
    assert "CloudFlare Origin SSL Certificate Authority" in row.reasons[0]
    (trusted,) = status.collect(
        [_host(server.port)], now=NOW, use_state=False, extra_trust=fake.cert_pem
    )
    assert trusted.mode == "strict", trusted.reasons
