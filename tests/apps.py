"""A real HTTP application for origins to proxy to (the integration tests' ``app`` fixture):
it answers every ``GET`` with :data:`APP_BODY`."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

APP_BODY = b"hello from the app\n"


class _App(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self.send_response(200)
        self.send_header("Content-Length", str(len(APP_BODY)))
        self.end_headers()
        self.wfile.write(APP_BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_app() -> Iterator[int]:
    """A real HTTP application on 127.0.0.1 (its port), stopped on exit."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
