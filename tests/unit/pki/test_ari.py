"""ARI's pure parts: the RFC 9773 certificate id, Retry-After, a kept window as the policy sees it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.pki.issuers.ari import cert_id, retry_after, window_of
from agent.state.records import RenewalInfo

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def certificate(serial: int, aki: bytes | None) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=90))
    )
    if aki is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(aki, None, None), critical=False
        )
    return builder.sign(key, hashes.SHA256())


def test_cert_id_matches_the_rfc_9773_example() -> None:
    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    assert cert_id(certificate(0x87654321, aki)) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def test_cert_id_needs_an_authority_key_identifier() -> None:
    assert cert_id(certificate(5, None)) is None


@pytest.mark.parametrize(
    ("header", "after"),
    [
        ("3600", timedelta(hours=1)),
        (None, timedelta(hours=6)),
        ("soon", timedelta(hours=6)),
        ("0", timedelta(minutes=1)),  # not more often than a minute
        ("9999999", timedelta(hours=24)),  # and at least daily
        ("Mon, 01 Jun 2026 14:30:00 GMT", timedelta(hours=2, minutes=30)),
    ],
    ids=["seconds", "absent", "garbage", "floor", "ceiling", "http-date"],
)
def test_retry_after_is_honoured_within_bounds(header: str | None, after: timedelta) -> None:
    assert retry_after(header, now=NOW) == NOW + after


def test_a_kept_answer_without_a_window_means_the_default_rule() -> None:
    none_offered = RenewalInfo("id", "https://ca/dir", NOW, NOW + timedelta(hours=6))
    assert window_of(none_offered) is None
    kept = RenewalInfo(
        "id",
        "https://ca/dir",
        NOW,
        NOW + timedelta(hours=6),
        start=NOW + timedelta(days=1),
        end=NOW + timedelta(days=2),
        renew_at=NOW + timedelta(days=1, hours=3),
    )
    window = window_of(kept)
    assert window is not None and window.renew_at == NOW + timedelta(days=1, hours=3)
