"""SSL-mode evaluation from served chains made with real cryptography."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization

from agent.pki.issuers.base import REGISTRY
from agent.pki.modes import deployment_problems, evaluate, name_matches, required_mode
from agent.pki.pins import spki_pin
from agent.pki.probe import Served
from tests.tlscerts import NOW, Issued, make_ca, make_leaf

NAMES = ["origin1.example.com", "www.example.com"]


def served(*certs: Issued, outcome: str = "ok") -> Served:
    der = tuple(c.cert.public_bytes(serialization.Encoding.DER) for c in certs)
    return Served("127.0.0.1", 443, NAMES[0], outcome, chain_der=der)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    root = make_ca("Root")
    inter = make_ca("Intermediate", parent=root)
    return {
        "root": root,
        "inter": inter,
        "leaf": make_leaf(NAMES, issuer=inter),
        "other_root": make_ca("Other"),
    }


def test_valid_chain_to_an_anchor_is_strict(pki: dict[str, Issued]) -> None:
    verdict = evaluate(
        served(pki["leaf"], pki["inter"]),
        names=NAMES,
        trust_anchors_pem=pki["root"].cert_pem,
        now=NOW,
    )
    assert verdict.mode == "strict"
    assert verdict.reasons == ()
    assert verdict.leaf_pin == spki_pin(pki["leaf"].cert)


def test_expired_certificate_is_only_full(pki: dict[str, Issued]) -> None:
    old = make_leaf(NAMES, issuer=pki["inter"], start=NOW - timedelta(days=100), days=90)
    verdict = evaluate(
        served(old, pki["inter"]), names=NAMES, trust_anchors_pem=pki["root"].cert_pem, now=NOW
    )
    assert verdict.mode == "full"
    assert len(verdict.reasons) == 1 and verdict.reasons[0].startswith("expired on")


def test_not_yet_valid_certificate_is_only_full(pki: dict[str, Issued]) -> None:
    future = make_leaf(NAMES, issuer=pki["inter"], start=NOW + timedelta(days=2))
    verdict = evaluate(
        served(future, pki["inter"]), names=NAMES, trust_anchors_pem=pki["root"].cert_pem, now=NOW
    )
    assert verdict.mode == "full" and verdict.reasons[0].startswith("not valid before")


def test_name_mismatch_names_the_missing_name(pki: dict[str, Issued]) -> None:
    verdict = evaluate(
        served(pki["leaf"], pki["inter"]),
        names=[*NAMES, "api.example.com"],
        trust_anchors_pem=pki["root"].cert_pem,
        now=NOW,
    )
    assert verdict.mode == "full"
    assert verdict.reasons == (
        "name mismatch: api.example.com not in certificate (origin1.example.com, www.example.com)",
    )


def test_chain_to_another_root_is_untrusted(pki: dict[str, Issued]) -> None:
    verdict = evaluate(
        served(pki["leaf"], pki["inter"]),
        names=NAMES,
        trust_anchors_pem=pki["other_root"].cert_pem,
        now=NOW,
    )
    assert verdict.mode == "full"
    assert len(verdict.reasons) == 1 and verdict.reasons[0].startswith("untrusted chain:")


def test_missing_intermediate_is_untrusted(pki: dict[str, Issued]) -> None:
    verdict = evaluate(
        served(pki["leaf"]), names=NAMES, trust_anchors_pem=pki["root"].cert_pem, now=NOW
    )
    assert verdict.mode == "full" and verdict.reasons[0].startswith("untrusted chain:")


def test_several_anchors_any_one_will_do(pki: dict[str, Issued]) -> None:
    anchors = [pki["other_root"].cert_pem, pki["root"].cert_pem]
    verdict = evaluate(
        served(pki["leaf"], pki["inter"]), names=NAMES, trust_anchors_pem=anchors, now=NOW
    )
    assert verdict.mode == "strict"


def test_self_signed_is_full_and_says_so() -> None:
    leaf = make_leaf(NAMES)
    verdict = evaluate(served(leaf), names=NAMES, trust_anchors_pem="", now=NOW)
    assert verdict.mode == "full"
    assert verdict.reasons == ("self-signed",)


def test_self_signed_with_matching_pin_is_full_pinned() -> None:
    leaf = make_leaf(NAMES)
    verdict = evaluate(served(leaf), names=NAMES, pins=[spki_pin(leaf.cert)], now=NOW)
    assert verdict.mode == "full_pinned"
    assert "self-signed" in verdict.reasons


def test_pin_of_another_key_does_not_authenticate() -> None:
    leaf, other = make_leaf(NAMES), make_leaf(NAMES)
    verdict = evaluate(served(leaf), names=NAMES, pins=[spki_pin(other.cert)], now=NOW)
    assert verdict.mode == "full"
    assert "key matches none of the pins" in verdict.reasons


def test_expired_pinned_certificate_is_not_pinned() -> None:
    leaf = make_leaf(NAMES, start=NOW - timedelta(days=100), days=90)
    verdict = evaluate(served(leaf), names=NAMES, pins=[spki_pin(leaf.cert)], now=NOW)
    assert verdict.mode == "full"


def test_wildcard_certificate_covers_one_label(pki: dict[str, Issued]) -> None:
    leaf = make_leaf(["*.example.com"], issuer=pki["inter"])
    ok = evaluate(
        served(leaf, pki["inter"]),
        names=["a.example.com", "B.Example.com."],
        trust_anchors_pem=pki["root"].cert_pem,
        now=NOW,
    )
    assert ok.mode == "strict"
    bad = evaluate(
        served(leaf, pki["inter"]),
        names=["example.com", "a.b.example.com"],
        trust_anchors_pem=pki["root"].cert_pem,
        now=NOW,
    )
    assert bad.mode == "full"
    assert bad.reasons[0].startswith("name mismatch: example.com, a.b.example.com")


def test_a_wildcard_name_asked_for_is_judged_strict_when_the_certificate_has_it(
    pki: dict[str, Issued],
) -> None:
    leaf = make_leaf(["example.com", "*.example.com"], issuer=pki["inter"])
    verdict = evaluate(
        served(leaf, pki["inter"]),
        names=["*.example.com"],
        trust_anchors_pem=pki["root"].cert_pem,
        now=NOW,
    )
    assert verdict.mode == "strict", verdict.reasons


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*.example.com", "www.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.www.example.com", False),
        ("*.com", "example.com", False),
        ("w*.example.com", "www.example.com", False),
        ("*.example.com", "*.example.com", True),
        ("www.example.com", "*.example.com", False),
        ("WWW.example.com.", "www.EXAMPLE.com", True),
    ],
)
def test_name_matching_follows_rfc6125(pattern: str, name: str, expected: bool) -> None:
    assert name_matches(pattern, name) is expected


def test_plain_http_only_is_flexible() -> None:
    verdict = evaluate(
        Served("127.0.0.1", 443, None, "plain_http", error="speaks HTTP"), names=NAMES, now=NOW
    )
    assert verdict.mode == "flexible"


def test_nothing_listening_is_off_unless_http_answers() -> None:
    refused = Served("127.0.0.1", 443, None, "refused", error="connection refused")
    assert evaluate(refused, names=NAMES, now=NOW).mode == "off"
    assert evaluate(refused, names=NAMES, now=NOW, http_available=True).mode == "flexible"


def test_failed_handshake_reason_says_tls_failed() -> None:
    failed = Served(
        "127.0.0.1", 443, None, "handshake_failed", error="tlsv1 alert protocol version"
    )
    verdict = evaluate(failed, names=NAMES, now=NOW)
    assert verdict.mode == "off"
    assert (
        verdict.reasons[0] == "TLS handshake failed on 127.0.0.1:443: tlsv1 alert protocol version"
    )


def test_client_certificate_requirement_is_carried(pki: dict[str, Issued]) -> None:
    der = (
        pki["leaf"].cert.public_bytes(serialization.Encoding.DER),
        pki["inter"].cert.public_bytes(serialization.Encoding.DER),
    )
    aop = Served(
        "127.0.0.1",
        443,
        NAMES[0],
        "client_cert_required",
        chain_der=der,
        client_cert_requested=True,
    )
    verdict = evaluate(aop, names=NAMES, trust_anchors_pem=pki["root"].cert_pem, now=NOW)
    assert verdict.mode == "strict" and verdict.client_cert_required


def test_deployment_is_fine_when_the_deployed_leaf_is_served_strictly(
    pki: dict[str, Issued],
) -> None:
    live = served(pki["leaf"], pki["inter"])
    verdict = evaluate(live, names=NAMES, trust_anchors_pem=pki["root"].cert_pem, now=NOW)
    tls12 = Served("127.0.0.1", 443, NAMES[0], "ok")
    problems = deployment_problems(
        live,
        verdict,
        want="strict",
        expected_cert_pem=pki["leaf"].cert_pem,
        profile="intermediate",
        tls12=tls12,
    )
    assert problems == ()


def test_deployment_serving_the_old_certificate_is_a_problem(pki: dict[str, Issued]) -> None:
    old = make_leaf(NAMES, issuer=pki["inter"])
    live = served(old, pki["inter"])
    verdict = evaluate(live, names=NAMES, trust_anchors_pem=pki["root"].cert_pem, now=NOW)
    problems = deployment_problems(
        live, verdict, want="strict", expected_cert_pem=pki["leaf"].cert_pem
    )
    assert len(problems) == 1
    assert problems[0].startswith(
        f"serves serial {old.cert.serial_number:x} (pin {spki_pin(old.cert)})"
    )


def test_deployment_below_the_wanted_mode_says_why(pki: dict[str, Issued]) -> None:
    live = served(pki["leaf"], pki["inter"])
    verdict = evaluate(live, names=NAMES, trust_anchors_pem=pki["other_root"].cert_pem, now=NOW)
    assert deployment_problems(live, verdict, want="full") == ()
    (problem,) = deployment_problems(live, verdict, want="strict")
    assert problem.startswith(
        "ready for full, not strict: untrusted chain: no path from issuer CN=Intermediate"
    )


def test_modern_profile_accepting_tls12_is_a_problem(pki: dict[str, Issued]) -> None:
    live = served(pki["leaf"], pki["inter"])
    verdict = evaluate(live, names=NAMES, trust_anchors_pem=pki["root"].cert_pem, now=NOW)
    accepted = Served("127.0.0.1", 443, NAMES[0], "ok")
    refused = Served("127.0.0.1", 443, NAMES[0], "handshake_failed", error="protocol version")
    assert deployment_problems(live, verdict, want="strict", profile="modern", tls12=refused) == ()
    (problem,) = deployment_problems(live, verdict, want="strict", profile="modern", tls12=accepted)
    assert problem.startswith("accepts TLS 1.2 although the profile is modern")
    (problem,) = deployment_problems(
        live, verdict, want="strict", profile="intermediate", tls12=refused
    )
    assert problem == "refuses TLS 1.2 although the profile is intermediate: protocol version"


@pytest.mark.parametrize(
    ("backend", "pins", "issuer_trust", "want"),
    [
        ("selfsigned", (), "", "full"),
        ("selfsigned", ("pin",), "", "full_pinned"),
        ("selfsigned", ("pin",), "ROOT PEM", "strict"),  # an explicit trust: still says strict
        ("localca", (), "ROOT PEM", "strict"),
        ("localca", ("pin",), "ROOT PEM", "strict"),
        ("acme", (), "", "strict"),
        ("cfssl", (), "", "strict"),
        ("cloudflare", ("pin",), "", "strict"),
        (None, (), "", "full"),  # verify without an issuer
        (None, ("pin",), "", "full_pinned"),
    ],
)
def test_auto_asks_strict_for_issuers_an_edge_trusts_and_full_otherwise(
    backend: str | None, pins: tuple[str, ...], issuer_trust: str, want: str
) -> None:
    issuer = REGISTRY[backend]() if backend else None
    assert required_mode("auto", pins=pins, issuer=issuer, issuer_trust=issuer_trust) == want


def test_an_explicit_mode_is_kept_and_an_unknown_one_refused() -> None:
    issuer = REGISTRY["acme"]()
    assert required_mode("full", issuer=issuer) == "full"
    assert required_mode("flexible", pins=["p"]) == "flexible"
    with pytest.raises(ValueError, match="unknown mode 'stric'"):
        required_mode("stric")
