"""`promote`: which hosts are the zone's origins, and what to do given their status rows."""

from __future__ import annotations

import pytest

from agent.errors import UsageError
from agent.inventory import Host
from agent.jobs import promote
from agent.jobs.status import StatusRow

ZONE = "023e105f4ecef8ad9ca31a8372d0c353"


def _row(host: str, mode: str, *reasons: str) -> StatusRow:
    return StatusRow(
        host=host,
        name=f"{host}.example.test",
        address="192.0.2.1",
        port=443,
        mode=mode,
        reasons=reasons,
    )


def test_the_zone_origins_are_the_hosts_naming_it() -> None:
    hosts = [
        Host("a", {"cloudflare_zone": ZONE}),
        Host("b", {"zone_id": ZONE}),
        Host("c", {"cloudflare_zone": "other"}),
        Host("d"),
    ]
    assert [h.name for h in promote.zone_hosts(hosts, ZONE)] == ["a", "b"]


def test_cloudflare_zone_wins_over_zone_id() -> None:
    host = Host("a", {"cloudflare_zone": "other", "zone_id": ZONE})
    assert promote.zone_of(host) == "other"
    with pytest.raises(UsageError):
        promote.zone_hosts([host], ZONE)


def test_a_zone_without_origins_is_a_clear_error_listing_the_zones_seen() -> None:
    with pytest.raises(UsageError) as exc:
        promote.zone_hosts([Host("a", {"cloudflare_zone": "z1"}), Host("b")], ZONE)
    text = str(exc.value)
    assert f"no host in the inventory belongs to zone {ZONE}" in text and "z1" in text
    assert "\n" not in text
    with pytest.raises(UsageError, match="cloudflare_zone"):
        promote.zone_hosts([Host("b")], ZONE)


@pytest.mark.parametrize("mode", ["strict", "origin_pull"])
def test_an_already_strict_zone_is_left_alone(mode: str) -> None:
    decision = promote.decide(ZONE, mode, [_row("a", "flexible")])
    assert decision.action == "already"
    assert "already" in decision.summary() and "nothing to do" in decision.summary()


def test_every_origin_strict_promotes() -> None:
    decision = promote.decide(ZONE, "full", [_row("b", "strict"), _row("a", "strict")])
    assert decision.action == "promote" and decision.hosts == ("a", "b")
    assert decision.summary() == (
        f"zone {ZONE}: 2 origins ready for Full (strict); set Full -> Full (strict)\n"
    )
    checked = decision.summary(check=True)
    assert "would set" in checked and "nothing changed" in checked


def test_one_origin_short_of_strict_blocks_and_says_why() -> None:
    rows = [
        _row("a", "strict"),
        _row("b", "flexible", "no TLS on 443"),
        _row("c", "full", "self-signed", "name mismatch"),
    ]
    decision = promote.decide(ZONE, "flexible", rows)
    assert decision.action == "blocked"
    assert [b.host for b in decision.blockers] == ["b", "c"]
    text = decision.summary()
    assert text.startswith(f"zone {ZONE}: stays Flexible: 2 of the zone's names")
    assert "  b: b.example.test: ready for Flexible only: no TLS on 443" in text
    assert "  c: c.example.test: ready for Full only: self-signed; name mismatch" in text


def test_full_pinned_is_not_enough_for_strict() -> None:
    assert promote.decide(ZONE, "full", [_row("a", "full_pinned")]).action == "blocked"


def test_no_rows_never_promotes() -> None:
    assert promote.decide(ZONE, "full", []).action == "blocked"
