"""Every CA answer is checked; each wrong answer is one IssuerError line naming the backend."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.errors import IssuerError
from agent.pki.checks import check_bundle
from agent.pki.csr import make_csr
from agent.pki.inspect import load_certificates
from agent.pki.issuers.base import CertBundle, IssueRequest
from agent.pki.issuers.localca import LocalCAIssuer
from agent.pki.keys import PrivateKey
from agent.pki.sign import to_pem

from .conftest import NOW

pytestmark = pytest.mark.hostile

NAMES = ("www.example.com", "example.com")


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _issue(
    ca: LocalCAIssuer, key: PrivateKey, names: tuple[str, ...] = NAMES, days: int = 30
) -> tuple[str, CertBundle]:
    csr = make_csr(key, names)
    return csr, ca.issue(IssueRequest(csr_pem=csr, names=names, validity=timedelta(days=days)))


def _check(
    bundle: CertBundle, csr: str, names: tuple[str, ...] = NAMES, **kwargs: object
) -> object:
    return check_bundle(bundle, csr_pem=csr, names=names, now=NOW, backend="localca", **kwargs)  # type: ignore[arg-type]


def _message(call: Callable[[], object]) -> str:
    with pytest.raises(IssuerError) as exc:
        call()
    assert exc.value.backend == "localca"
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_a_good_answer_passes_and_gives_the_leaf_info(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    ca = make_ca(intermediate=True)
    csr, bundle = _issue(ca, key)
    info = check_bundle(
        bundle,
        csr_pem=csr,
        names=["Example.com", "www.example.com"],
        now=NOW,
        backend="localca",
        trust_anchors=ca.paths.root_cert.read_text(),
    )
    assert info.pin_sha256 == key.pin
    assert set(info.names) == set(NAMES)


def test_a_full_chain_in_the_certificate_field_is_accepted(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    ca = make_ca(intermediate=True)
    csr, bundle = _issue(ca, key)
    merged = CertBundle(cert_pem=bundle.fullchain_pem, backend="localca")
    assert _check(merged, csr, trust_anchors=[ca.root]).pin_sha256 == key.pin  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "<html>502 Bad Gateway</html>",
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----",
    ],
)
def test_garbage_is_rejected(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey, text: str
) -> None:
    csr, _ = _issue(make_ca(), key)
    assert _message(lambda: _check(CertBundle(cert_pem=text), csr)) == (
        "issuer localca: answer is not a PEM certificate"
    )


def test_a_garbage_chain_is_rejected(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    csr, bundle = _issue(make_ca(), key)
    assert _message(lambda: _check(replace(bundle, chain_pem="junk"), csr)) == (
        "issuer localca: chain is not PEM certificates"
    )


def test_a_certificate_for_another_key_is_rejected(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    ca = make_ca()
    _, bundle = _issue(ca, key)
    other = PrivateKey.generate()
    other_csr = make_csr(other, NAMES)
    assert _message(lambda: _check(bundle, other_csr)) == (
        f"issuer localca: certificate is for another key (pin {key.pin}, CSR pin {other.pin})"
    )


def test_names_must_be_exactly_those_asked_for(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    csr, bundle = _issue(make_ca(), key, ("a.example.com", "b.example.com"))
    assert _message(lambda: _check(bundle, csr, ("a.example.com", "c.example.com"))) == (
        "issuer localca: certificate names differ from those asked for: "
        "missing c.example.com; unexpected b.example.com"
    )
    assert _message(lambda: _check(bundle, csr, ("a.example.com",))) == (
        "issuer localca: certificate names differ from those asked for: unexpected b.example.com"
    )
    more = ("a.example.com", "b.example.com", "127.0.0.1")
    assert _message(lambda: _check(bundle, csr, more)) == (
        "issuer localca: certificate names differ from those asked for: missing 127.0.0.1"
    )


def test_an_expired_certificate_is_rejected(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    issued = NOW - timedelta(days=100)
    ca = make_ca(clock=lambda: issued)
    csr, bundle = _issue(ca, key, days=30)
    assert _message(lambda: _check(bundle, csr)) == (
        f"issuer localca: certificate expired at {_stamp(issued + timedelta(days=30))} "
        f"(now {_stamp(NOW)})"
    )


def test_a_certificate_not_yet_valid_is_rejected(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    later = NOW + timedelta(hours=2)
    csr, bundle = _issue(make_ca(clock=lambda: later), key)
    assert _message(lambda: _check(bundle, csr)) == (
        f"issuer localca: certificate is not valid before "
        f"{_stamp(later - timedelta(minutes=5))} (now {_stamp(NOW)})"
    )


def test_small_clock_skew_is_tolerated(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    csr, bundle = _issue(make_ca(clock=lambda: NOW + timedelta(minutes=8)), key)
    assert _check(bundle, csr).pin_sha256 == key.pin  # type: ignore[attr-defined]


def test_a_chain_in_the_wrong_order_is_rejected(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    ca = make_ca(intermediate=True, name="Chain CA")
    csr, bundle = _issue(ca, key)
    swapped = replace(bundle, chain_pem=to_pem(ca.root) + bundle.chain_pem)
    assert _message(lambda: _check(swapped, csr)) == (
        "issuer localca: chain does not chain: certificate 0 (CN=www.example.com) is not "
        "signed by certificate 1 (CN=Chain CA,O=origin-agent)"
    )


def test_a_chain_from_another_ca_is_rejected(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    ca = make_ca(intermediate=True, name="Chain CA")
    other = make_ca(intermediate=True, name="Other")
    csr, bundle = _issue(ca, key)
    wrong = replace(bundle, chain_pem=other.paths.intermediate_cert.read_text())
    assert _message(lambda: _check(wrong, csr)) == (
        "issuer localca: chain does not chain: certificate 0 (CN=www.example.com) is not "
        "signed by certificate 1 (CN=Other intermediate,O=origin-agent)"
    )


def test_a_chain_must_reach_the_trust_anchors_when_given(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    ca, other = make_ca(intermediate=True, name="Chain CA"), make_ca(name="Other")
    csr, bundle = _issue(ca, key)
    assert _message(lambda: _check(bundle, csr, trust_anchors=[other.root])) == (
        "issuer localca: chain does not lead to a trusted root "
        "(top issuer CN=Chain CA,O=origin-agent)"
    )
    assert _check(bundle, csr, trust_anchors=[other.root, ca.root])


def test_a_forged_signature_is_caught_against_the_anchor(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    ca = make_ca()
    csr, bundle = _issue(ca, key)
    der = bytearray(load_certificates(bundle.cert_pem)[0].public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature value
    forged = CertBundle(cert_pem=_pem(bytes(der)))
    with pytest.raises(IssuerError):
        _check(forged, csr, trust_anchors=[ca.root])


def _pem(der: bytes) -> str:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"


# -- properties: whatever a CA sends, the answer is an IssuerError or a checked certificate ----


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalCAIssuer, str, CertBundle]:
    from agent.pki.issuers.localca import init_ca

    directory = tmp_path_factory.mktemp("fuzz") / "ca"
    init_ca(directory, now=NOW)
    ca = LocalCAIssuer(directory, clock=lambda: NOW)
    csr, bundle = _issue(ca, PrivateKey.generate())
    return ca, csr, bundle


_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(
    answer=st.one_of(
        st.binary(max_size=3000).map(lambda b: b.decode("latin-1")),
        st.text(max_size=2000),
        st.binary(min_size=0, max_size=1500).map(_pem),
    )
)
def test_arbitrary_bytes_as_an_answer_give_only_issuer_error(
    material: tuple[LocalCAIssuer, str, CertBundle], answer: str
) -> None:
    _, csr, bundle = material
    candidates = [CertBundle(cert_pem=answer)]
    if answer.strip():  # an empty chain is a valid answer
        candidates.append(replace(bundle, chain_pem=answer))
    for candidate in candidates:
        with pytest.raises(IssuerError):
            check_bundle(candidate, csr_pem=csr, names=NAMES, now=NOW, backend="fuzz")


@_SETTINGS
@given(data=st.data())
def test_a_mutated_certificate_is_refused_unless_its_signed_content_is_intact(
    material: tuple[LocalCAIssuer, str, CertBundle], data: st.DataObject
) -> None:
    ca, csr, bundle = material
    der = bytearray(load_certificates(bundle.cert_pem)[0].public_bytes(serialization.Encoding.DER))
    index = data.draw(st.integers(0, len(der) - 1))
    der[index] ^= data.draw(st.integers(1, 255))
    try:
        check_bundle(
            CertBundle(cert_pem=_pem(bytes(der))),
            csr_pem=csr,
            names=NAMES,
            now=NOW,
            backend="fuzz",
            trust_anchors=[ca.root],
        )
    except IssuerError:
        return
    # Accepted: only an encoding detail outside the signed content may have changed (the
    # signature BIT STRING's unused-bits count when the signature's last bits are zero); what
    # the CA signed and the signature itself must be the original's.
    original = load_certificates(bundle.cert_pem)[0]
    accepted = load_certificates(_pem(bytes(der)))[0]
    assert accepted.tbs_certificate_bytes == original.tbs_certificate_bytes
    assert accepted.signature == original.signature
