"""``status`` says when each certificate will be renewed and why, by the one renewal policy."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from agent.jobs.status import StatusRow, renewal_of
from agent.jobs.status_render import table, to_json
from agent.pki.inspect import CertInfo
from agent.pki.renewal import RenewalWindow

ISSUED = datetime(2026, 1, 1, tzinfo=UTC)


def cert(days: int) -> CertInfo:
    return CertInfo(
        subject="CN=a.example",
        common_name="a.example",
        dns_names=("a.example",),
        ip_addresses=(),
        issuer="CN=CA",
        serial="01",
        not_before=ISSUED,
        not_after=ISSUED + timedelta(days=days),
        key_type="ec256",
        fingerprint_sha256="00",
        pin_sha256="p",
        is_ca=False,
        self_issued=False,
    )


def row(**fields: object) -> StatusRow:
    base = StatusRow(host="h", name="a.example", address="127.0.0.1", port=443, mode="strict")
    return replace(base, **fields)  # type: ignore[arg-type]


def test_status_renews_at_two_thirds_unless_the_host_sets_renew_before_days() -> None:
    assert renewal_of(cert(90), {}) == {
        "renew_at": ISSUED + timedelta(days=60),
        "renew_why": "two thirds of the 90 days lifetime",
        "renew_rule": "lifetime",
    }
    zero = renewal_of(cert(90), {"renew_before_days": 0})
    assert zero["renew_at"] == ISSUED + timedelta(days=90)
    assert zero["renew_why"] == "renew_before: at expiry"
    assert renewal_of(cert(90), {"renew_before_days": -3}) == {
        "renew_why": "renew_before_days must be a number of days, 0 or more (got -3)"
    }


def test_status_follows_the_ca_window_kept_for_the_certificate() -> None:
    window = RenewalWindow(
        start=ISSUED + timedelta(days=70),
        end=ISSUED + timedelta(days=71),
        renew_at=ISSUED + timedelta(days=70, hours=5),
    )
    fields = renewal_of(cert(90), {}, window)
    assert fields["renew_at"] == window.renew_at
    assert fields["renew_rule"] == "ari"


def test_status_table_and_json_show_the_renewal_moment_and_reason() -> None:
    fields = renewal_of(cert(6), {})
    shown = row(not_after=ISSUED + timedelta(days=6), days_left=6, **fields)
    assert "2026-01-05 (2/3 of lifetime)" in table([shown])
    data = json.loads(to_json([shown], ISSUED))["rows"][0]
    assert data["renew_at"] == "2026-01-05T00:00:00+00:00"
    assert data["renew_why"] == "two thirds of the 6 days lifetime"
    assert data["renew_rule"] == "lifetime"


def test_status_reads_the_kept_ca_window_of_the_served_certificate() -> None:
    from agent.jobs.status import kept_window
    from agent.pki.issuers.ari import MemoryRenewalInfoStore, cert_id
    from agent.state.records import RenewalInfo
    from tests.unit.pki.test_ari import certificate

    served = certificate(0x1234, b"\x01" * 20)
    store = MemoryRenewalInfoStore()
    assert kept_window(store, served) is None
    ident = cert_id(served)
    assert ident is not None
    store.save_renewal_info(
        RenewalInfo(
            ident,
            "https://ca/dir",
            ISSUED,
            ISSUED + timedelta(hours=6),
            start=ISSUED + timedelta(days=80),
            end=ISSUED + timedelta(days=81),
            renew_at=ISSUED + timedelta(days=80, hours=1),
        )
    )
    window = kept_window(store, served)
    assert window is not None and window.renew_at == ISSUED + timedelta(days=80, hours=1)
    assert kept_window(store, certificate(0x1234, None)) is None


def test_the_html_report_flags_what_the_policy_renews_not_a_fixed_30_days() -> None:
    from agent.jobs.status_render import to_html

    now = ISSUED + timedelta(days=3)
    short = row(host="short", days_left=3, **renewal_of(cert(6), {}))  # due on day 4: not yet
    due = row(host="due", days_left=87, **renewal_of(cert(90), {"renew_before_days": 88}))
    page = to_html([short, due], now)
    assert re.search(r'<tr class="m-strict fine"><td>short</td>', page)  # 3 days left, not due
    assert re.search(r'<tr class="m-strict problem"><td>due</td>', page)  # 87 left, but due
    assert page.index(">due<") < page.index(">short<")  # problems first


def test_status_points_at_the_cas_explanation_of_its_window() -> None:
    window = RenewalWindow(
        start=ISSUED + timedelta(days=10),
        end=ISSUED + timedelta(days=11),
        renew_at=ISSUED + timedelta(days=10),
        explanation_url="https://ca.example/incident-42",
    )
    assert renewal_of(cert(90), {}, window)["renew_why"].endswith(
        "(see https://ca.example/incident-42)"
    )
