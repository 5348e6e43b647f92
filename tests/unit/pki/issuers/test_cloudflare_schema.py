"""Our Cloudflare client and the emulators, held to Cloudflare's own schema: every request body
and query our client sends, and every answer the emulators give, must pass the typed models of
the official ``cloudflare`` SDK (generated from Cloudflare's OpenAPI schema), with no field the
model does not know. The SDK itself is also pointed at the emulators and must read them.

Traffic stays on 127.0.0.1: both emulators run in this process; the DNS emulator's
challtestsrv is replaced by a small HTTP sink (a real server that accepts its writes)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cloudflare import Cloudflare
from cloudflare.types.dns.record_delete_response import RecordDeleteResponse
from cloudflare.types.dns.record_list_params import RecordListParams
from cloudflare.types.dns.record_response import TXTRecord
from cloudflare.types.dns.txt_record_param import TXTRecordParam
from cloudflare.types.origin_ca_certificates.origin_ca_certificate import OriginCACertificate
from cloudflare.types.origin_ca_certificates.origin_ca_certificate_create_params import (
    OriginCACertificateCreateParams,
)
from cloudflare.types.origin_ca_certificates.origin_ca_certificate_delete_response import (
    OriginCACertificateDeleteResponse,
)
from cloudflare.types.origin_ca_certificates.origin_ca_certificate_list_params import (
    OriginCACertificateListParams,
)
from cloudflare.types.zones.setting_get_response import ZonesSSL2
from cloudflare.types.zones.ssl import SSL
from cloudflare.types.zones.zone import Zone
from cloudflare.types.zones.zone_list_params import ZoneListParams
from pydantic import BaseModel, TypeAdapter

from agent.pki.csr import make_csr
from agent.pki.issuers.base import IssueRequest
from agent.pki.issuers.cloudflare import CloudflareConfig, CloudflareIssuer
from agent.pki.issuers.cloudflare_api import CloudflareClient
from agent.pki.issuers.cloudflare_dns import CloudflareDns
from agent.pki.keys import PrivateKey
from agent.secret import Secret
from tests.emulators.cloudflare import CloudflareEmulator
from tests.emulators.cloudflare_dns import CloudflareDnsEmulator

NAMES = ("example.test", "*.example.test")


@dataclass(frozen=True)
class Exchange:
    """One request our client sent and the answer it got, as JSON."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    answer: dict[str, Any]


def recording_session(log: list[Exchange]) -> requests.Session:
    """A plain requests session whose response hook keeps every exchange."""

    def keep(resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        url = urlsplit(resp.request.url or "")
        raw = resp.request.body
        log.append(
            Exchange(
                method=str(resp.request.method),
                path=url.path.removeprefix("/client/v4"),
                query={k: v[0] for k, v in parse_qs(url.query).items()},
                body=json.loads(raw) if raw else None,
                status=resp.status_code,
                answer=resp.json(),
            )
        )

    session = requests.Session()
    session.hooks["response"].append(keep)
    return session


def conforms(model: Any, data: Any) -> None:
    """``data`` validates against ``model`` and has no key the model lacks."""
    TypeAdapter(model).validate_python(data)
    if isinstance(model, type) and issubclass(model, BaseModel):
        known = set(model.model_fields)
    else:
        known = set(model.__required_keys__) | set(model.__optional_keys__)
    assert isinstance(data, dict) and not set(data) - known, f"{model.__name__}: {data}"


def envelope(exchange: Exchange) -> Any:
    """The ``result`` of a successful v4 envelope, checked for its shape."""
    answer = exchange.answer
    assert answer["success"] is True and 200 <= exchange.status < 300, answer
    assert answer["errors"] == [] and answer["messages"] == []
    info = answer.get("result_info")
    if info is not None:
        assert {"page", "per_page", "count", "total_count", "total_pages"} <= set(info)
    return answer["result"]


@pytest.fixture
def cf() -> Iterator[CloudflareEmulator]:
    with CloudflareEmulator(tls=False) as emulator:
        yield emulator


class _Sink(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def dns() -> Iterator[CloudflareDnsEmulator]:
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    emulator = CloudflareDnsEmulator(f"http://127.0.0.1:{sink.server_address[1]}", ["example.test"])
    try:
        yield emulator
    finally:
        emulator.stop()
        sink.shutdown()
        sink.server_close()
        thread.join(timeout=5)


def _issuer(cf: CloudflareEmulator, log: list[Exchange], **kwargs: Any) -> CloudflareIssuer:
    config = CloudflareConfig(
        credential=Secret(cf.token), base_url=cf.base_url, zone_id=cf.zone_id, **kwargs
    )
    return CloudflareIssuer(config, session=recording_session(log))


def _csr() -> str:
    return make_csr(PrivateKey.generate("ec256"), NAMES)


def test_origin_ca_requests_and_answers_match_the_sdk_models(cf: CloudflareEmulator) -> None:
    log: list[Exchange] = []
    issuer = _issuer(cf, log)
    bundle = issuer.issue(IssueRequest(csr_pem=_csr(), names=NAMES))
    assert [c["id"] for c in issuer.certificates()] == [bundle.backend_id]
    issuer.client.get_certificate(bundle.backend_id)
    issuer.revoke(bundle.cert_pem, bundle.backend_id)
    assert issuer.certificates() == []
    assert [(e.method, e.path) for e in log] == [
        ("POST", "/certificates"),
        ("GET", "/certificates"),
        ("GET", f"/certificates/{bundle.backend_id}"),
        ("DELETE", f"/certificates/{bundle.backend_id}"),
        ("GET", "/certificates"),
    ]
    create, listing, get, delete, empty = log
    conforms(OriginCACertificateCreateParams, create.body)
    conforms(OriginCACertificate, envelope(create))
    conforms(OriginCACertificateListParams, listing.query)
    for row in envelope(listing) + envelope(empty):
        conforms(OriginCACertificate, row)
    conforms(OriginCACertificate, envelope(get))
    conforms(OriginCACertificateDeleteResponse, envelope(delete))
    assert all(e.body is None for e in (listing, get, delete, empty))


def test_zone_ssl_setting_requests_and_answers_match_the_sdk_models(
    cf: CloudflareEmulator,
) -> None:
    log: list[Exchange] = []
    client = _issuer(cf, log).client
    assert client.get_ssl_mode(cf.zone_id) == "full"
    assert client.set_ssl_mode(cf.zone_id, "strict") == "strict"
    get, patch = log
    assert (get.method, patch.method) == ("GET", "PATCH")
    conforms(SSL, {"id": "ssl", **patch.body})  # the edit body is the setting's value
    conforms(ZonesSSL2, envelope(get))
    conforms(ZonesSSL2, envelope(patch))


def test_dns_record_requests_and_answers_match_the_sdk_models(
    dns: CloudflareDnsEmulator,
) -> None:
    log: list[Exchange] = []
    client = CloudflareClient(
        dns.base_url,
        credential=Secret(dns.token),
        session=recording_session(log),
        backend="acme",
    )
    records = CloudflareDns(client)
    made = records.create("_acme-challenge.example.test", "token-digest")
    assert records.ours("_acme-challenge.example.test") == [made]
    records.delete(made)
    by_id = CloudflareDns(client, zone_id=dns.zone_id("example.test"))
    assert by_id.ours("_acme-challenge.example.test") == []
    zones, create, listing, delete, zone, empty = log
    assert [e.method for e in log] == ["GET", "POST", "GET", "DELETE", "GET", "GET"]
    conforms(ZoneListParams, zones.query)
    for row in envelope(zones):
        conforms(Zone, row)
    conforms(TXTRecordParam, create.body)
    conforms(TXTRecord, envelope(create))
    for exchange in (listing, empty):
        conforms(RecordListParams, {"zone_id": "z", **_filters(exchange.query)})
        for row in envelope(exchange):
            conforms(TXTRecord, row)
    conforms(RecordDeleteResponse, envelope(delete))
    conforms(Zone, envelope(zone))


def _filters(query: dict[str, str]) -> dict[str, Any]:
    """Deep-object query parameters (``name.exact=``) as the params TypedDict nests them."""
    nested: dict[str, Any] = {}
    for key, value in query.items():
        head, _, tail = key.partition(".")
        if tail:
            nested.setdefault(head, {})[tail] = value
        else:
            nested[key] = value
    return nested


def test_the_sdk_reads_the_emulators(cf: CloudflareEmulator, dns: CloudflareDnsEmulator) -> None:
    sdk = Cloudflare(api_token=cf.token, base_url=cf.base_url, max_retries=0)
    made = sdk.origin_ca_certificates.create(
        csr=_csr(), hostnames=list(NAMES), request_type="origin-ecc", requested_validity=7
    )
    assert made is not None and made.id and made.requested_validity == 7
    assert [c.id for c in sdk.origin_ca_certificates.list(zone_id=cf.zone_id)] == [made.id]
    got = sdk.origin_ca_certificates.get(made.id)
    assert got is not None and got.certificate == made.certificate
    gone = sdk.origin_ca_certificates.delete(made.id)
    assert gone is not None and gone.id == made.id and gone.revoked_at is not None
    edited = sdk.zones.settings.edit("ssl", zone_id=cf.zone_id, value="strict")
    assert edited is not None and edited.value == "strict"
    zone_sdk = Cloudflare(api_token=dns.token, base_url=dns.base_url, max_retries=0)
    zone_id = dns.zone_id("example.test")
    assert [z.id for z in zone_sdk.zones.list(name="example.test")] == [zone_id]
    record = zone_sdk.dns.records.create(
        zone_id=zone_id, type="TXT", name="_acme-challenge.example.test", content="v", ttl=60
    )
    assert record is not None and record.id
    names = zone_sdk.dns.records.list(zone_id=zone_id, type="TXT", name={"exact": record.name})
    assert [r.id for r in names] == [record.id]
    zone_sdk.dns.records.delete(record.id, zone_id=zone_id)
    assert dns.txt_records() == []


@pytest.mark.parametrize(
    "validity, configured, sent",
    [
        (None, 0, 5475),  # nothing asked: Cloudflare's own default
        (timedelta(days=90), 0, 90),
        (timedelta(days=6), 0, 7),  # the smallest choice covering what was asked
        (timedelta(days=400), 0, 730),
        (timedelta(days=90), 30, 30),  # the issuer's requested_validity wins
    ],
)
def test_requested_validity_is_cloudflares_default_unless_the_user_asks(
    cf: CloudflareEmulator, validity: timedelta | None, configured: int, sent: int
) -> None:
    log: list[Exchange] = []
    issuer = _issuer(cf, log, requested_validity=configured)
    issuer.issue(IssueRequest(csr_pem=_csr(), names=NAMES, validity=validity))
    assert log[0].body["requested_validity"] == sent
    conforms(OriginCACertificateCreateParams, log[0].body)
