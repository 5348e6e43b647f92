"""A served certificate's text (subject, issuer, names) is input from whoever runs the origin:
whatever it holds, ``status`` prints it on one line per row, with no terminal control, bidi
override or markup reaching the terminal or the HTML report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.inventory import Host
from agent.jobs.status import StatusRow, _with_certificate
from agent.jobs.status_render import table, to_html
from agent.pki.probe import Served
from tests.hostile import RAW_CONTROLS

pytestmark = pytest.mark.hostile

NOW = datetime(2026, 12, 5, tzinfo=UTC)
KEY = ec.generate_private_key(ec.SECP256R1())
TEXT = st.text(min_size=1, max_size=64) | st.sampled_from(
    [
        "X\x1b[2J\x1b[31mSTRICT OK\x1b[0m",
        "<script>alert(1)</script>",
        "a\r\nb: forged",
        "\u202eevil",
    ]
)


def _served(subject: str, issuer: str, name: str) -> Served:
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(KEY.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(KEY, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    return Served(
        "127.0.0.1", 443, "a.example.com", "ok", chain_der=(cert.public_bytes(Encoding.DER),)
    )


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(subject=TEXT, issuer=TEXT, name=TEXT)
def test_whatever_a_served_certificate_says_prints_as_one_clean_line(
    subject: str, issuer: str, name: str
) -> None:
    try:
        served = _served(subject, issuer, name)
    except ValueError:
        return  # cryptography refuses to build it: no origin can serve it either
    base = StatusRow(host="web1", name="a.example.com", address="127.0.0.1", port=443, mode="full")
    row = _with_certificate(base, served, Host("web1"), NOW, None, None)
    text = table([row])
    assert not RAW_CONTROLS & set(text)
    assert len(text.strip("\n").splitlines()) == 2  # the header and the row
    page = to_html([row], NOW)
    assert "<script>alert" not in page and not {"\x1b", "\u202e"} & set(page)
