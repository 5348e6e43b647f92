"""CSRs carry exactly the validated names."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from agent.errors import ValidationError
from agent.pki.csr import csr_names, load_csr, make_csr, normalize_names
from agent.pki.keys import PrivateKey
from agent.pki.pins import spki_pin


def test_csr_has_dns_and_ip_sans_and_the_first_name_as_cn(key: PrivateKey) -> None:
    pem = make_csr(key, ["www.example.com", "example.com", "127.0.1.5", "::1"])
    csr = load_csr(pem)
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "www.example.com"
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.example.com", "example.com"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.1.5", "::1"]
    assert csr_names(csr) == ("www.example.com", "example.com", "127.0.1.5", "::1")
    assert spki_pin(pem) == key.pin


def test_names_are_normalised_and_deduplicated() -> None:
    assert normalize_names(["WWW.Example.com.", "www.example.com", "0:0::1", "*.example.com"]) == (
        "www.example.com",
        "::1",
        "*.example.com",
    )


@pytest.mark.parametrize(
    "bad", ["bad;name.com", "a\nb.com", "x{.com", "", "-lead.com", "a b.com", "ex$(id).com"]
)
def test_a_name_that_could_break_a_config_is_rejected(key: PrivateKey, bad: str) -> None:
    with pytest.raises(ValidationError) as exc:
        make_csr(key, ["ok.example.com", bad], where="host web-1")
    assert str(exc.value) == f"host web-1: invalid hostname {bad!r}"


def test_a_csr_needs_a_name(key: PrivateKey) -> None:
    with pytest.raises(ValidationError, match="at least one name"):
        make_csr(key, [])


def test_a_long_first_name_leaves_the_cn_out(key: PrivateKey) -> None:
    long = ("a" * 60) + ".example.com"
    csr = load_csr(make_csr(key, [long]))
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME) == []
    assert csr_names(csr) == (long,)


def test_garbage_is_not_a_csr() -> None:
    with pytest.raises(ValidationError) as exc:
        load_csr("nope")
    assert str(exc.value) == "csr: not a PEM certificate signing request"
