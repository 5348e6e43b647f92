"""The renewal policy: two thirds of the lifetime, ``renew_before`` (0 allowed), ARI windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.pki import renewal
from agent.pki.renewal import RenewalWindow, renew_before_from_days, renewal_due

ISSUED = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
YEAR15 = timedelta(days=5475)  # Cloudflare Origin CA's longest (and default) validity


@pytest.mark.parametrize(
    ("lifetime", "left_when_due"),
    [
        (6 * DAY, 2 * DAY),
        (7 * DAY, 7 * DAY / 3),
        (90 * DAY, 30 * DAY),
        (YEAR15, YEAR15 / 3),
    ],
    ids=["6d", "7d", "90d", "15y"],
)
def test_default_renews_when_two_thirds_of_the_lifetime_are_used(
    lifetime: timedelta, left_when_due: timedelta
) -> None:
    decision = renewal_due(ISSUED, ISSUED + lifetime)
    assert decision.not_after - decision.due_at == left_when_due
    assert "two thirds" in decision.why and decision.rule == "lifetime"
    just_before = decision.due_at - timedelta(minutes=1)
    assert not decision.is_due(just_before)
    assert decision.reason(just_before) is None
    assert decision.is_due(decision.due_at)


def test_fifteen_years_are_renewed_with_five_years_left() -> None:
    decision = renewal_due(ISSUED, ISSUED + YEAR15)
    assert decision.not_after - decision.due_at == timedelta(days=1825)
    assert decision.why == "two thirds of the 5475 days lifetime"


def test_six_day_certificates_are_not_renewed_on_every_run() -> None:
    decision = renewal_due(ISSUED, ISSUED + 6 * DAY)
    assert not decision.is_due(ISSUED + 3 * DAY)  # 3 days left: more than a third
    assert decision.reason(ISSUED + 4 * DAY + timedelta(hours=1)) == (
        "expires in 1 day; renewal due (two thirds of the 6 days lifetime)"
    )


@pytest.mark.parametrize(
    ("lifetime", "days", "due_left"),
    [(90 * DAY, 30, 30 * DAY), (90 * DAY, 10, 10 * DAY), (6 * DAY, 1, DAY), (YEAR15, 30, 30 * DAY)],
    ids=["90d-30", "90d-10", "6d-1", "15y-30"],
)
def test_renew_before_replaces_the_default_rule(
    lifetime: timedelta, days: int, due_left: timedelta
) -> None:
    decision = renewal_due(ISSUED, ISSUED + lifetime, renew_before=renew_before_from_days(days))
    assert decision.not_after - decision.due_at == due_left
    assert decision.why.startswith("renew_before: ") and decision.rule == "renew_before"


def test_renew_before_zero_means_at_expiry_not_the_default() -> None:
    assert renew_before_from_days(0) == timedelta(0)
    decision = renewal_due(ISSUED, ISSUED + 90 * DAY, renew_before=renew_before_from_days(0))
    assert decision.due_at == ISSUED + 90 * DAY
    assert decision.why == "renew_before: at expiry"
    assert not decision.is_due(ISSUED + 89 * DAY)
    assert decision.reason(ISSUED + 90 * DAY) == "expired"


def test_no_renew_before_is_the_single_default() -> None:
    assert renewal.DEFAULT_RENEW_BEFORE is None
    assert renew_before_from_days(None) is renewal.DEFAULT_RENEW_BEFORE


@pytest.mark.parametrize("bad", [-1, True, "30"])
def test_renew_before_days_must_be_a_number_of_days(bad: object) -> None:
    with pytest.raises(ValueError, match="renew_before_days"):
        renew_before_from_days(bad)  # type: ignore[arg-type]


def window(start_day: float, end_day: float, at_day: float) -> RenewalWindow:
    return RenewalWindow(
        start=ISSUED + start_day * DAY, end=ISSUED + end_day * DAY, renew_at=ISSUED + at_day * DAY
    )


@pytest.mark.parametrize(
    ("lifetime", "ari", "due_day"),
    [
        (90 * DAY, window(70, 72, 71), 71),  # later than the default (day 60)
        (90 * DAY, window(10, 11, 10.5), 10.5),  # the CA asks for an early renewal
        (6 * DAY, window(3, 3.5, 3.25), 3.25),
        (7 * DAY, window(5, 6, 5.5), 5.5),
        (YEAR15 / DAY, window(5000, 5001, 5000), 5000),
    ],
    ids=["90d-later", "90d-early", "6d", "7d", "15y"],
)
def test_a_ca_window_replaces_the_default_rule(
    lifetime: timedelta | float, ari: RenewalWindow, due_day: float
) -> None:
    span = lifetime if isinstance(lifetime, timedelta) else lifetime * DAY
    decision = renewal_due(ISSUED, ISSUED + span, ari_window=ari)
    assert decision.due_at == ISSUED + due_day * DAY
    assert decision.why.startswith("CA's renewal window ") and decision.rule == "ari"


def test_the_earlier_of_renew_before_and_the_ca_window_wins() -> None:
    late_window = window(85, 86, 85.5)
    user_first = renewal_due(
        ISSUED, ISSUED + 90 * DAY, renew_before=10 * DAY, ari_window=late_window
    )
    assert user_first.due_at == ISSUED + 80 * DAY
    assert user_first.why == "renew_before: 10 days before expiry"
    ca_first = renewal_due(
        ISSUED, ISSUED + 90 * DAY, renew_before=timedelta(0), ari_window=late_window
    )
    assert ca_first.due_at == ISSUED + 85.5 * DAY
    assert ca_first.why == "CA's renewal window 2026-03-27 00:00 to 2026-03-28 00:00 UTC"


def test_a_window_in_the_past_means_renew_now() -> None:
    decision = renewal_due(ISSUED, ISSUED + 90 * DAY, ari_window=window(1, 2, 1.5))
    assert decision.is_due(ISSUED + 3 * DAY)
    reason = decision.reason(ISSUED + 3 * DAY)
    assert reason is not None and reason.startswith("expires in 87 days; renewal due (CA's")


def test_an_expired_certificate_is_due_whatever_the_settings() -> None:
    decision = renewal_due(ISSUED, ISSUED + 90 * DAY, ari_window=window(100, 101, 100))
    assert decision.is_due(ISSUED + 95 * DAY)
    assert decision.reason(ISSUED + 95 * DAY) == "expired"


def test_windows_and_times_are_checked() -> None:
    with pytest.raises(ValueError, match="outside"):
        window(1, 2, 3)
    with pytest.raises(ValueError, match="ends before"):
        window(2, 1, 1.5)
    with pytest.raises(ValueError, match="aware"):
        renewal_due(datetime(2026, 1, 1), datetime(2026, 4, 1))
    with pytest.raises(ValueError, match="negative"):
        renewal_due(ISSUED, ISSUED + DAY, renew_before=-DAY)
