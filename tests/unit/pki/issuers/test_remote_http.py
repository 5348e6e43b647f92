"""The shared remote-CA plumbing: bounded retries, answer parsing, certificate checks, and the
per-backend envelope/error readers. HTTP goes through a replaying requests adapter (a real
transport implementation, like httpx's MockTransport); no sleeping."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from requests.adapters import BaseAdapter

from agent.errors import IssuerError
from agent.pki.issuers.acme import describe_acme_error
from agent.pki.issuers.cfssl import authsign_body, envelope_result
from agent.pki.issuers.http import (
    RetryPolicy,
    check_certificate,
    describe_network_error,
    request_json,
    split_pem_certs,
)
from agent.secret import Secret
from tests.tlscerts import fresh, make_ca, make_leaf


class Replay(BaseAdapter):
    """Answers each request with the next scripted item: (status, body bytes) or an exception."""

    def __init__(self, script: list[tuple[int, bytes] | Exception]) -> None:
        super().__init__()
        self.script: Iterator[tuple[int, bytes] | Exception] = iter(script)
        self.sent: list[requests.PreparedRequest] = []

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        self.sent.append(request)
        item = next(self.script)
        if isinstance(item, Exception):
            raise item
        resp = requests.Response()
        resp.status_code, resp._content = item  # noqa: SLF001 - building a response by hand
        resp.request, resp.url = request, str(request.url)
        return resp

    def close(self) -> None:
        pass


def call(
    script: list[tuple[int, bytes] | Exception], attempts: int = 3, **kwargs: Any
) -> tuple[tuple[int, Any], Replay, list[float]]:
    adapter, sleeps = Replay(script), list[float]()
    session = requests.Session()
    session.mount("http://", adapter)
    result = request_json(
        session,
        "POST",
        "http://ca.test/sign",
        backend="cfssl",
        what="sign",
        policy=RetryPolicy(attempts=attempts, backoff=0.5),
        timeout=5,
        json_body={"a": 1},
        sleep=sleeps.append,
        **kwargs,
    )
    return result, adapter, sleeps


REFUSED = requests.ConnectionError(
    "HTTPConnectionPool(host='127.0.0.1', port=1): Max retries "
    "exceeded (Caused by NewConnectionError('<conn>: Failed to "
    "establish a new connection: [Errno 111] Connection refused'))"
)


def test_connection_failures_are_retried_with_growing_waits() -> None:
    (status, body), adapter, sleeps = call([REFUSED, REFUSED, (200, b'{"ok": true}')])
    assert (status, body) == (200, {"ok": True})
    assert len(adapter.sent) == 3 and sleeps == [0.5, 1.0]
    assert json.loads(adapter.sent[0].body or b"") == {"a": 1}


def test_still_unreachable_after_last_attempt_is_one_line() -> None:
    with pytest.raises(IssuerError) as err:
        call([REFUSED, REFUSED, REFUSED])
    assert str(err.value) == (
        "issuer cfssl: sign: unreachable after 3 attempts (Connection "
        "refused); check that the CA is up and the URL is right"
    )


def test_tls_failure_is_not_retried() -> None:
    tls = requests.exceptions.SSLError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
        "failed: self-signed certificate (_ssl.c:1006)"
    )
    with pytest.raises(IssuerError) as err:
        call([tls, (200, b"{}")])
    assert str(err.value) == (
        "issuer cfssl: sign: TLS failure: certificate verify failed: "
        "self-signed certificate; check ca_bundle"
    )


def test_transient_status_is_retried_and_the_last_json_answer_returned() -> None:
    (status, body), adapter, _ = call([(503, b"{}"), (429, b"{}"), (503, b'{"e": 1}')])
    assert (status, body, len(adapter.sent)) == (503, {"e": 1}, 3)


def test_caller_can_flag_an_answer_as_transient() -> None:
    (status, _), adapter, _ = call(
        [(400, b'{"code": 1100}'), (200, b"{}")], is_transient=lambda st, b: b.get("code") == 1100
    )
    assert status == 200 and len(adapter.sent) == 2


def test_refusal_is_not_retried() -> None:
    (status, _), adapter, _ = call([(400, b'{"success": false}'), (200, b"{}")])
    assert status == 400 and len(adapter.sent) == 1


def test_non_json_answer_is_shown_printable_and_short() -> None:
    with pytest.raises(IssuerError) as err:
        call([(502, b"<html>\n\x00bad gateway" + b"x" * 200)] * 3)
    text = str(err.value)
    assert text.startswith("issuer cfssl: sign: HTTP 502 answer is not JSON: '<html> bad gateway")
    assert text.endswith("...'") and "\n" not in text


@pytest.mark.parametrize(
    "text, reason",
    [
        (str(REFUSED), "Connection refused"),
        ("Read timed out. (read timeout=5)", "Read timed out. (read timeout=5)"),
    ],
)
def test_describe_network_error(text: str, reason: str) -> None:
    assert describe_network_error(requests.ConnectionError(text)) == reason


# --- certificate checks -----------------------------------------------------------------


@pytest.fixture(scope="module")
def material() -> dict[str, Any]:
    root = make_ca("root", start=fresh())
    inter = make_ca("inter", parent=root, start=fresh())
    leaf = make_leaf(["a.test", "b.test"], issuer=inter, start=fresh(), days=1)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.test")]))
        .sign(leaf.key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    return {
        "csr": csr,
        "leaf": leaf.cert_pem,
        "inter": inter.cert_pem,
        "root": root.cert_pem,
        "other": make_leaf(["a.test", "b.test"], issuer=inter, start=fresh(), days=1).cert_pem,
    }


def test_check_certificate_splits_leaf_and_chain_and_drops_the_root(
    material: dict[str, Any],
) -> None:
    leaf, chain = check_certificate(
        material["leaf"] + material["inter"] + material["root"],
        csr_pem=material["csr"],
        names=["A.test", "b.test."],
        backend="cloudflare",
    )
    assert leaf == material["leaf"] and chain == material["inter"]
    assert split_pem_certs(material["leaf"].replace("\n", "\r\n")) == [material["leaf"]]


@pytest.mark.parametrize(
    "answer, names, message",
    [
        ("junk", ["a.test"], "the CA answered no certificate: 'junk'"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
            ["a.test"],
            "the CA answered an unparsable certificate",
        ),
        ("other", ["a.test"], "the certificate returned is not for the CSR's key"),
        ("leaf", ["a.test", "c.test"], "the certificate returned lacks the names c.test"),
    ],
)
def test_check_certificate_rejects_bad_answers(
    material: dict[str, Any], answer: str, names: list[str], message: str
) -> None:
    with pytest.raises(IssuerError) as err:
        check_certificate(
            material.get(answer, answer), csr_pem=material["csr"], names=names, backend="acme"
        )
    assert str(err.value).startswith(f"issuer acme: {message}")


# --- cfssl wire format ------------------------------------------------------------------


def test_authsign_token_is_hmac_sha256_over_the_exact_request_bytes() -> None:
    key = "00112233445566778899aabbccddeeff"
    inner = b'{"certificate_request": "CSR", "hosts": ["a.test"]}'
    body = authsign_body(inner, Secret(key))
    assert base64.b64decode(body["request"]) == inner
    expected = hmac.new(bytes.fromhex(key), inner, hashlib.sha256).digest()
    assert base64.b64decode(body["token"]) == expected
    assert key not in json.dumps(body)


def test_cfssl_envelope_errors_are_the_cas_own_words() -> None:
    with pytest.raises(IssuerError) as err:
        envelope_result(
            400,
            {
                "success": False,
                "result": None,
                "messages": [],
                "errors": [{"code": 9002, "message": "CSR Decode failed"}],
            },
            what="sign",
        )
    assert str(err.value) == "issuer cfssl: sign: CA refused: CSR Decode failed (code 9002)"
    with pytest.raises(IssuerError, match="HTTP 200 answer is not a CFSSL envelope"):
        envelope_result(200, ["x"], what="sign")
    with pytest.raises(IssuerError, match="answer has no result object"):
        envelope_result(200, {"success": True, "result": "x"}, what="sign")
    assert envelope_result(200, {"success": True, "result": {"certificate": "P"}}, what="sign") == {
        "certificate": "P"
    }


# --- ACME problem documents -------------------------------------------------------------


def test_acme_problem_detail_and_type_make_the_message() -> None:
    problem = messages.Error.with_code("rejectedIdentifier", detail="Policy forbids issuing")
    assert describe_acme_error(problem) == "Policy forbids issuing (rejectedIdentifier)"
    bare = messages.Error.from_json({"type": "urn:ietf:params:acme:error:serverInternal"})
    assert describe_acme_error(bare).endswith("(serverInternal)")


def test_acme_step_maps_library_failures_to_one_line() -> None:
    from acme import errors

    from agent.pki.issuers.acme import AcmeIssuer

    issuer = AcmeIssuer.from_config({"directory": "https://acme.test/dir", "timeout": 30})

    def timeout() -> None:
        raise errors.TimeoutError()

    def problem() -> None:
        raise messages.Error.with_code("rateLimited", detail="too many certificates")

    with pytest.raises(IssuerError) as err:
        issuer._step("finalize", timeout)
    assert str(err.value) == "issuer acme: finalize: no result within 30s"
    with pytest.raises(IssuerError) as err:
        issuer._step("new order", problem)
    assert str(err.value) == "issuer acme: new order: too many certificates (rateLimited)"
