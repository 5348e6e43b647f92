"""A real HTTP webhook receiver on loopback for tests: records each JSON body it gets and
answers with the next status of a script (then 200)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, statuses: list[int], delay: float) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.statuses = list(statuses)
        self.delay = delay
        self.url = ""


@contextmanager
def receiver(
    address: str = "127.0.0.1", statuses: list[int] | None = None, delay: float = 0.0
) -> Iterator[Receiver]:
    """Serve on ``address`` (a free port) until the block ends."""
    state = Receiver(statuses or [], delay)
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            state.bodies.append(json.loads(self.rfile.read(length)))
            state.paths.append(self.path)
            if state.delay:
                stop.wait(state.delay)
            code = state.statuses.pop(0) if state.statuses else 200
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((address, 0), Handler)
    server.daemon_threads = True
    state.url = f"http://{address}:{server.server_port}/hooks/T0KEN-secret"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
