"""When a certificate is renewed: the one renewal policy, stated once.

A certificate is renewed when it has used two thirds of its lifetime (90 days: at 30 left;
6 days: at 2 left; 15 years: at 5 left), unless the user gives ``renew_before`` (renew that
long before expiry; zero means at expiry) or the CA suggests a renewal window (ACME Renewal
Information, RFC 9773). When the CA suggests a window, the moment chosen inside it replaces
the two-thirds rule; a ``renew_before`` given by the user still applies, and the earlier of
the two wins (the CA may ask for an early renewal, e.g. before a mass revocation). An expired
certificate is always due.

Everything here is pure: the clock and the moment chosen inside a window come in as
arguments. The CLI (``--renew-before``), the plans (``renew_before_days``) and the modules
all leave the default to :data:`DEFAULT_RENEW_BEFORE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

#: The default ``renew_before``: ``None`` means "when two thirds of the lifetime are used".
#: The only place that states the default; everything else passes ``None`` through.
DEFAULT_RENEW_BEFORE: timedelta | None = None
#: The share of a certificate's lifetime used before it is renewed by default.
LIFETIME_USED = (2, 3)


@dataclass(frozen=True)
class RenewalWindow:
    """A window a CA suggested for renewing one certificate (RFC 9773 ``suggestedWindow``).

    ``renew_at`` is the moment chosen inside it (uniformly at random, once, by whoever
    fetched the window), so every run that reads the same window renews at the same moment.
    """

    start: datetime
    end: datetime
    renew_at: datetime
    explanation_url: str = ""

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None or self.renew_at.tzinfo is None:
            raise ValueError("renewal window times must be timezone-aware")
        if self.end < self.start:
            raise ValueError("renewal window ends before it starts")
        if not self.start <= self.renew_at <= self.end:
            raise ValueError("the chosen renewal moment lies outside the window")


@dataclass(frozen=True)
class RenewalDecision:
    """When a certificate is to be renewed (``due_at``), why then (``why``, a phrase), and
    which rule set the moment (``rule``: ``lifetime``, ``renew_before`` or ``ari``)."""

    due_at: datetime
    why: str
    not_after: datetime
    rule: Literal["lifetime", "renew_before", "ari"] = "lifetime"

    def is_due(self, now: datetime) -> bool:
        """True once ``now`` has reached the renewal moment (or the certificate expired)."""
        return now >= self.due_at or now >= self.not_after

    def reason(self, now: datetime) -> str | None:
        """A short reason to renew at ``now`` (``None``: not due yet), for run output."""
        if now >= self.not_after:
            return "expired"
        if now < self.due_at:
            return None
        return f"expires in {_span(self.not_after - now)}; renewal due ({self.why})"


def _span(delta: timedelta) -> str:
    """``delta`` in words, rounded down: days, else hours, else minutes."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds >= 86400:
        days = seconds // 86400
        return f"{days} day" + ("s" if days != 1 else "")
    if seconds >= 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def default_due_at(not_before: datetime, not_after: datetime) -> datetime:
    """The moment two thirds of the lifetime ``[not_before, not_after]`` are used."""
    used, whole = LIFETIME_USED
    return not_before + (not_after - not_before) * used / whole


def renewal_due(
    not_before: datetime,
    not_after: datetime,
    *,
    renew_before: timedelta | None = DEFAULT_RENEW_BEFORE,
    ari_window: RenewalWindow | None = None,
) -> RenewalDecision:
    """When to renew the certificate valid over ``[not_before, not_after]``, and why.

    Args:
        not_before: the certificate's notBefore (aware).
        not_after: its notAfter (aware).
        renew_before: renew this long before ``not_after`` (0: at expiry); ``None`` is the
            default rule, two thirds of the lifetime.
        ari_window: the CA's suggested window with the moment chosen inside it; its moment
            replaces the default rule, and the earlier of it and ``renew_before`` wins.

    Raises:
        ValueError: ``renew_before`` is negative, or a time is naive.
    """
    if not_before.tzinfo is None or not_after.tzinfo is None:
        raise ValueError("certificate times must be timezone-aware")
    if renew_before is not None and renew_before < timedelta(0):
        raise ValueError("renew_before must not be negative")
    candidates: list[RenewalDecision] = []
    if renew_before is not None:
        left = "at expiry" if not renew_before else f"{_span(renew_before)} before expiry"
        candidates.append(
            RenewalDecision(
                not_after - renew_before, f"renew_before: {left}", not_after, "renew_before"
            )
        )
    if ari_window is not None:
        why = (
            f"CA's renewal window {ari_window.start.astimezone(UTC):%Y-%m-%d %H:%M}"
            f" to {ari_window.end.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        )
        candidates.append(RenewalDecision(ari_window.renew_at, why, not_after, "ari"))
    if not candidates:
        lifetime = _span(not_after - not_before)
        why = f"two thirds of the {lifetime} lifetime"
        candidates.append(RenewalDecision(default_due_at(not_before, not_after), why, not_after))
    return min(candidates, key=lambda c: c.due_at)


def renew_before_from_days(days: int | float | None) -> timedelta | None:
    """A ``renew_before_days`` setting (CLI, plan, module argument) as a timedelta: ``None``
    keeps the default rule, ``0`` means at expiry.

    Raises:
        ValueError: negative or not a number.
    """
    if days is None:
        return DEFAULT_RENEW_BEFORE
    if isinstance(days, bool) or not isinstance(days, int | float) or days < 0:
        raise ValueError(f"renew_before_days must be a number of days, 0 or more (got {days!r})")
    return timedelta(days=days)
