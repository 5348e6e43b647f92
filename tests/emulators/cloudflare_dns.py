"""A Cloudflare v4 DNS API emulator (zones and TXT records) that writes through to
``pebble-challtestsrv``, so a real ACME CA (pebble resolving through challtestsrv) really looks
the records up.

Serves over HTTP on 127.0.0.1 in a thread, as /work/shared/reference/ari-dns01-trust.md
documents the API:

- ``GET /client/v4/zones?name=`` -> the zones with that name; ``GET /zones/{id}``.
- ``POST /zones/{id}/dns_records`` ``{type, name, content, ttl, comment}`` -> the record
  (``id``, ``created_on``, ``meta``...: the SDK's ``TXTRecord``); the name must lie in the zone.
  The TXT value is added at challtestsrv (``/set-txt``).
- ``GET /zones/{id}/dns_records?type=&name.exact=&page=&per_page=`` (paged, ``result_info``).
- ``DELETE /zones/{id}/dns_records/{record id}`` -> ``{id}``; challtestsrv's values for that
  name are cleared (``/clear-txt``) and the remaining records' values set again.
- Auth: ``Authorization: Bearer <token>`` (code 10000 otherwise); the v4 envelope everywhere.

Tests read :attr:`CloudflareDnsEmulator.records` and :attr:`~CloudflareDnsEmulator.seen`.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import secrets
import threading
import urllib.request
from typing import Any
from urllib.parse import parse_qs, urlsplit

_PREFIX = "/client/v4"


class _Refusal(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class CloudflareDnsEmulator:
    """Zones of TXT records, mirrored into challtestsrv's DNS."""

    def __init__(self, challtestsrv_management: str, zones: list[str]) -> None:
        self.management = challtestsrv_management.rstrip("/")
        self.token = secrets.token_urlsafe(24)
        self.zones = {secrets.token_hex(16): z.rstrip(".").lower() for z in zones}
        self.records: dict[str, dict[str, Any]] = {}  # as the API shows them
        self.record_zone: dict[str, str] = {}  # record id -> zone id
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        emulator = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                emulator._serve(self)

            def do_POST(self) -> None:
                emulator._serve(self)

            def do_DELETE(self) -> None:
                emulator._serve(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{_PREFIX}"

    def zone_id(self, name: str) -> str:
        return next(i for i, z in self.zones.items() if z == name)

    def txt_records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.records.values()]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # -- serving ---------------------------------------------------------------------------

    def _serve(self, req: http.server.BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        with self._lock:
            self.seen.append((req.command, parts.path))
        try:
            if req.headers.get("Authorization") != f"Bearer {self.token}":
                raise _Refusal(403, 10000, "Authentication error")
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            result, info = self._route(req.command, parts.path.removeprefix(_PREFIX), query, raw)
            body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
            if info is not None:
                body["result_info"] = info
            status = 200
        except _Refusal as err:
            status = err.status
            body = {
                "success": False,
                "errors": [{"code": err.code, "message": err.message}],
                "messages": [],
                "result": None,
            }
        data = json.dumps(body).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def _route(
        self, method: str, path: str, query: dict[str, str], raw: bytes
    ) -> tuple[Any, dict[str, Any] | None]:
        if method == "GET" and path == "/zones":
            found = [self._zone(i) for i, z in self.zones.items() if z == query.get("name")]
            return self._page(found, query, default=20)
        match = re.fullmatch(r"/zones/([0-9a-f]+)(/dns_records(?:/([0-9a-f]+))?)?", path)
        if not match or match.group(1) not in self.zones:
            raise _Refusal(404, 7003, "Could not route to " + path)
        zone_id, records, record_id = match.group(1), match.group(2), match.group(3)
        if not records and method == "GET":
            return self._zone(zone_id), None
        if records and not record_id and method == "POST":
            return self._create(zone_id, raw), None
        if records and not record_id and method == "GET":
            return self._list(zone_id, query)
        if record_id and method == "DELETE":
            return self._delete(zone_id, record_id), None
        raise _Refusal(405, 10405, f"Method {method} not allowed")

    def _zone(self, zone_id: str) -> dict[str, Any]:
        """A zone object with the fields Cloudflare's schema requires (``Zone``)."""
        return {
            "id": zone_id,
            "name": self.zones[zone_id],
            "status": "active",
            "account": {"id": "0" * 32, "name": "lab"},
            "created_on": "2026-01-01T00:00:00Z",
            "modified_on": "2026-01-01T00:00:00Z",
            "activated_on": "2026-01-01T00:00:00Z",
            "development_mode": 0,
            "meta": {"cdn_only": False, "dns_only": False, "step": 2},
            "name_servers": ["ns1.lab.test", "ns2.lab.test"],
            "original_dnshost": None,
            "original_name_servers": None,
            "original_registrar": None,
            "owner": {"id": None, "name": None, "type": "user"},
            "plan": {"id": "0" * 32, "name": "Free Website"},
            "paused": False,
            "type": "full",
            "permissions": ["#zone:read", "#dns_records:edit"],
        }

    def _create(self, zone_id: str, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw)
        except ValueError:
            raise _Refusal(400, 9207, "Request body is invalid.") from None
        zone = self.zones[zone_id]
        name = str(body.get("name", "")).rstrip(".").lower()
        if body.get("type") != "TXT" or not isinstance(body.get("content"), str):
            raise _Refusal(400, 9000, "this emulator only holds TXT records")
        if name != zone and not name.endswith("." + zone):
            raise _Refusal(400, 9005, "Content for TXT record is invalid: name outside the zone")
        now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        record = {
            "id": secrets.token_hex(16),
            "name": name,
            "type": "TXT",
            "content": body["content"],
            "ttl": int(body.get("ttl") or 1),
            "proxied": False,
            "proxiable": False,
            "comment": body.get("comment"),
            "tags": [],
            "settings": {},
            "meta": {},
            "created_on": now,
            "modified_on": now,
        }
        with self._lock:
            self.records[record["id"]] = record
            self.record_zone[record["id"]] = zone_id
        self._challtestsrv("/set-txt", {"host": name + ".", "value": body["content"]})
        return record

    def _list(self, zone_id: str, query: dict[str, str]) -> tuple[Any, dict[str, Any]]:
        name = query.get("name.exact", query.get("name"))  # the schema's filter is name.exact
        with self._lock:
            rows = [
                r
                for r in self.records.values()
                if self.record_zone[r["id"]] == zone_id
                and r["type"] == query.get("type", r["type"])
                and (name is None or r["name"] == name.rstrip(".").lower())
            ]
        return self._page(rows, query, default=100)

    @staticmethod
    def _page(
        rows: list[dict[str, Any]], query: dict[str, str], *, default: int
    ) -> tuple[Any, dict[str, Any]]:
        """One page of ``rows`` (``page``, ``per_page``); past the last page, none."""
        per_page = max(5, min(int(query.get("per_page") or default), 5000000))
        page = max(1, int(query.get("page") or 1))
        pages = max(1, -(-len(rows) // per_page))
        chunk = rows[(page - 1) * per_page : page * per_page]
        info = {"page": page, "per_page": per_page, "count": len(chunk), "total_pages": pages}
        return chunk, {**info, "total_count": len(rows)}

    def _delete(self, zone_id: str, record_id: str) -> dict[str, Any]:
        with self._lock:
            record = self.records.get(record_id)
            if record is None or self.record_zone[record_id] != zone_id:
                raise _Refusal(404, 81044, "Record does not exist.")
            del self.records[record_id], self.record_zone[record_id]
            remaining = [r["content"] for r in self.records.values() if r["name"] == record["name"]]
        self._challtestsrv("/clear-txt", {"host": record["name"] + "."})
        for value in remaining:
            self._challtestsrv("/set-txt", {"host": record["name"] + ".", "value": value})
        return {"id": record_id}

    def _challtestsrv(self, path: str, body: dict[str, str]) -> None:
        request = urllib.request.Request(
            self.management + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            if resp.status != 200:
                raise _Refusal(500, 1000, f"challtestsrv {path}: HTTP {resp.status}")
