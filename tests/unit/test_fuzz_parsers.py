"""Properties: whatever an origin, a CA or a user's file says, parsing it never raises anything
but our own errors (no traceback), every rejection is one line, and what is accepted is clean.

Covered: the origin gather output (agent.modules.tls.facts.parse), a CA's answer
(agent.pki.checks.check_bundle, the CFSSL envelope), plan text (load_yaml_text + parse_plan)
and the connection settings of inventory hosts (connection_spec)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agent.errors import AgentError, InventoryError, IssuerError, PlanError
from agent.inventory.connection import connection_spec
from agent.inventory.model import Host
from agent.modules.tls import facts
from agent.pki.checks import check_bundle
from agent.pki.csr import make_csr
from agent.pki.issuers.base import CertBundle
from agent.pki.issuers.cfssl import envelope_result
from agent.pki.keys import PrivateKey
from agent.plan.load import load_yaml_text
from agent.plan.parse import parse_plan
from tests.tarstream import tar_b64
from tests.tlscerts import make_ca, make_leaf

pytestmark = pytest.mark.hostile

NOW = datetime(2026, 6, 1, tzinfo=UTC)
NAMES = ("a.example.test", "b.example.test")


def one_line(err: BaseException) -> None:
    text = str(err)
    assert text and "\n" not in text and "\r" not in text, text


# -- the origin's gather output -----------------------------------------------------------------
SECTIONS = [
    "@@root /etc/ssl/origin-agent/a",
    "@@root relative",
    "@@detect",
    "@@systemd",
    "@@tar",
    "@@leftovers",
    "@@file /etc/x",
    "@@file /etc/y",
    "@@link /etc/l",
    "@@check 0",
    "@@running",
    "@@",
    "@@@@x",
]


_ROOT = "/etc/ssl/origin-agent/a"
_TAR = tar_b64(
    (f"{_ROOT}/current", "V1"),
    (f"{_ROOT}/current/meta.json", b"[1, 2]"),
    (f"{_ROOT}/current/fullchain.pem", b"\xff\xfe"),
    (f"{_ROOT}/next/pubkey.pem", b""),
    ("/etc/x", b"content"),
    ("/etc/l", "/etc/x"),
)
BODIES = st.sampled_from(
    [
        _TAR,
        _TAR[:200],
        tar_b64((f"{_ROOT}/current/meta.json", b"{not json")),
        "yes",
        "present",
        "",
        "20260101T000000Z-ab12",
        "3",
        "-1",
        "x" * 300,
        base64.b64encode(b'{"issuer_id": "x"}').decode(),
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(b"\xff\xfe").decode(),
        "not base64 !!",
        "nginx version: nginx/1.22.1",
    ]
) | st.text(max_size=30)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(SECTIONS), st.lists(BODIES, max_size=3)), max_size=12)
    | st.text(max_size=300).map(lambda t: [("", [t])])
)
def test_any_gather_output_parses_to_facts_without_a_traceback(
    sections: list[tuple[str, list[str]]],
) -> None:
    text = "\n".join(line for head, body in sections for line in ([head] if head else []) + body)
    try:
        parsed = facts.parse(
            text, detect_parser=lambda listing: ["nginx"] if "nginx" in listing else []
        )
    except AgentError as err:
        one_line(err)
        return
    assert isinstance(parsed, facts.OriginFacts)
    assert isinstance(parsed.meta, dict) and parsed.leftovers >= 0
    assert all(v is None or isinstance(v, bytes) for v in parsed.files.values())


# -- a CA's answer ------------------------------------------------------------------------------
@cache
def material() -> dict[str, Any]:
    """A CA, a CSR for NAMES and certificates right and wrong for it (real cryptography)."""
    ca = make_ca("Fuzz CA", start=NOW - timedelta(days=1), days=900)
    ours = ec.generate_private_key(ec.SECP256R1())
    csr_pem = make_csr(PrivateKey(ours), NAMES)
    other = ec.generate_private_key(ec.SECP256R1())

    def leaf(names: tuple[str, ...], key: Any, start: datetime, days: int) -> str:
        return make_leaf(list(names), issuer=ca, key=key, start=start, days=days).cert_pem

    return {
        "csr": csr_pem,
        "ca": ca.cert_pem,
        "good": leaf(NAMES, ours, NOW - timedelta(hours=1), 90),
        "wrong_names": leaf(("c.example.test",), ours, NOW - timedelta(hours=1), 90),
        "wrong_key": leaf(NAMES, other, NOW - timedelta(hours=1), 90),
        "expired": leaf(NAMES, ours, NOW - timedelta(days=100), 90),
        "future": leaf(NAMES, ours, NOW + timedelta(days=3), 90),
    }


@st.composite
def pem_texts(draw: st.DrawFn) -> str:
    m = material()
    text: str = draw(
        st.sampled_from(
            [
                m["good"],
                m["wrong_names"],
                m["wrong_key"],
                m["expired"],
                m["future"],
                m["ca"],
                m["csr"],
                "",
                "garbage",
            ]
        )
    )
    op = draw(st.sampled_from(["keep", "truncate", "flip", "junk", "double", "text"]))
    if op == "truncate" and text:
        text = text[: draw(st.integers(0, len(text)))]
    elif op == "flip" and len(text) > 40:
        at = draw(st.integers(30, len(text) - 30))
        text = (
            text[:at] + draw(st.sampled_from(["A", "/", "=", "\n", "-", "\x00"])) + text[at + 1 :]
        )
    elif op == "junk":
        text = text + draw(st.text(max_size=40))
    elif op == "double":
        text = text + text
    elif op == "text":
        text = draw(st.text(max_size=200))
    return text


@settings(max_examples=400, deadline=None)
@given(cert=pem_texts(), chain=pem_texts() | st.just(""), anchors=st.booleans())
def test_any_ca_answer_is_accepted_only_when_right_and_else_refused_in_one_line(
    cert: str, chain: str, anchors: bool
) -> None:
    m = material()
    try:
        info = check_bundle(
            CertBundle(cert, chain, "fuzz"),
            csr_pem=m["csr"],
            names=NAMES,
            now=NOW,
            backend="fuzz",
            trust_anchors=m["ca"] if anchors else None,
        )
    except AgentError as err:
        one_line(err)
        return
    # accepted: the leaf carries the CSR's key and exactly the names asked for; with trust
    # anchors, its signature was checked too, so it is the CA's certificate byte for byte
    leaf = x509.load_pem_x509_certificate(cert.encode())
    csr = x509.load_pem_x509_csr(m["csr"].encode())
    assert leaf.public_key() == csr.public_key()
    assert {n.lower() for n in info.names} == set(NAMES)
    if anchors:
        good = x509.load_pem_x509_certificate(m["good"].encode())
        assert leaf.public_bytes(serialization.Encoding.DER) == good.public_bytes(
            serialization.Encoding.DER
        )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["success", "result", "errors", "messages", "message", "code", "certificate", "x"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(status=st.sampled_from([200, 201, 400, 401, 500, 502]), body=JSON)
def test_any_cfssl_answer_gives_a_result_or_one_line(status: int, body: Any) -> None:
    try:
        result = envelope_result(status, body, what="sign")
    except IssuerError as err:
        one_line(err)
        return
    assert status == 200 and isinstance(result, dict) and body["success"] is True


# -- plan text ----------------------------------------------------------------------------------
PLAN_LINES = [
    "- hosts: all",
    "  tasks:",
    "    - name: rotate",
    "      tls_origin:",
    "        force: true",
    "        names: [a.example, 'b\\n.example']",
    "        x: {{ y }}",
    "    - command: [echo, hi]",
    "      when: x ==",
    "  serial: 50%",
    "  serial: -1",
    "  vars: {a: &a [1, *a]}",
    "    - tls_origin: {site: 'a;b'}",
    "---",
    "- !!python/object x",
    "\t- bad tab",
    "- hosts: [1, 2]",
    "  handlers: 3",
    "  become: maybe",
    "  tasks: {}",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PLAN_LINES) | st.text(max_size=20), max_size=10))
def test_any_plan_text_is_a_plan_or_plan_errors(lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    try:
        parse_plan(load_yaml_text(text, "fuzz.yml"), "fuzz.yml")
    except PlanError as err:
        for problem in getattr(err, "errors", [err]):
            one_line(problem)


# -- connection settings of a host ---------------------------------------------------------------
CONN_VARS = st.sampled_from(
    [
        "ansible_host",
        "ansible_port",
        "ansible_user",
        "ansible_timeout",
        "ansible_ssh_private_key_file",
        "ansible_become",
        "ansible_connection",
        "host",
        "port",
        "user",
        "known_hosts",
        "password_env",
    ]
)
VALUES = (
    st.sampled_from(
        [
            "127.0.0.1",
            "web-1.example",
            "h\n",
            "a;b",
            "22",
            "0",
            "70000",
            "root",
            "ro ot",
            "/k",
            "rel/k",
            "yes",
            "ssh",
            "local",
            "telnet",
            "1e9",
            "nan",
        ]
    )
    | st.text(max_size=15)
    | st.integers(-1, 70000)
    | st.booleans()
    | st.floats()
    | st.none()
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(CONN_VARS, VALUES, max_size=5))
@example({"ansible_host": "web.example\n"})  # a regex `$` lets a trailing newline through
@example({"ansible_user": "root\n"})
def test_connection_settings_are_valid_or_one_line_inventory_errors(values: dict[str, Any]) -> None:
    try:
        spec = connection_spec(Host("h1", dict(values)))
    except InventoryError as err:
        one_line(err)
        return
    for text in (spec.address, spec.user):
        assert text.strip() == text and not any(c in text for c in "\n\r;{}'\"` $"), spec
    assert 1 <= spec.port <= 65535
    json.dumps(str(spec))
