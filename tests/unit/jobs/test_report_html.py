"""The HTML report people read: problems first, natural host order, counts, filter, escaping."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from agent.jobs.report_html import natural_key, ordered, to_html
from agent.jobs.status import StatusRow

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def fleet(n: int = 50) -> list[StatusRow]:
    """n strict origins h1..hn, except h37 (Flexible: broken on purpose), h12 (5 days left),
    h3 (Full: self-signed) and h44 (20 days left, inside the renewal window)."""
    rows = []
    for i in range(1, n + 1):
        days = {12: 5, 44: 20}.get(i, 60 + i)
        mode = {37: "flexible", 3: "full"}.get(i, "strict")
        served = mode != "flexible"
        rows.append(
            StatusRow(
                host=f"h{i}",
                name=f"h{i}.example.test",
                address="127.0.0.1",
                port=443,
                mode=mode,
                reasons=("no TLS on 127.0.0.1:443",) if not served else (),
                not_after=NOW + timedelta(days=days) if served else None,
                days_left=days if served else None,
                renew_at=NOW + timedelta(days=days - 30) if served else None,  # 90-day certificates
                renew_rule="lifetime",
                issuer="CN=Lab CA" if i % 5 else "CN=R11,O=Let's Encrypt",
                server="nginx" if i % 4 else "apache",
            )
        )
    return rows


def test_problems_come_first_then_hosts_in_natural_order() -> None:
    items = ordered(fleet(), now=NOW, require_mode="strict")
    hosts = [r.host for r, _ in items]
    assert hosts[:4] == ["h37", "h3", "h12", "h44"]  # no TLS, below strict, expiring soonest
    assert hosts[4:] == [f"h{i}" for i in range(1, 51) if i not in (37, 3, 12, 44)]
    assert [v.problem for _, v in items[:4]] == [
        "no TLS on 127.0.0.1:443",
        "Full where Full (strict) is required",
        "expires in 5 days (renewal due)",
        "expires in 20 days (renewal due)",
    ]


def test_renewal_due_is_the_policys_verdict_not_a_fixed_number_of_days() -> None:
    rows = fleet()
    h44 = next(r for r in rows if r.host == "h44")  # 20 days left, policy due in 10 days
    later = replace(h44, renew_at=NOW + timedelta(days=10), renew_rule="renew_before")
    items = ordered([later], now=NOW, require_mode="strict")
    assert items[0][1].rank == 3
    page = to_html([later], NOW)
    assert "<td>2026-12-14 (renew_before)</td>" in page and "need attention" not in page


def test_natural_key_sorts_numbers_as_numbers() -> None:
    names = ["h10", "h2", "web-10a", "h1", "web-9b"]
    assert sorted(names, key=natural_key) == ["h1", "h2", "h10", "web-9b", "web-10a"]


def test_page_has_counts_filter_and_no_outside_reference() -> None:
    page = to_html(fleet(), NOW)
    assert "4 need attention" in page
    assert ">Full (strict): 48<" in page and ">Flexible: 1<" in page and ">Full: 1<" in page
    assert "<td>Lab CA</td><td>40</td>" in page and "<td>R11</td><td>10</td>" in page
    assert 'id="filter"' in page and "addEventListener('input'" in page
    assert not re.search(r"""(src|href)=|@import|url\(|https?://""", page)
    body = page[page.index("<tbody>", page.index('id="origins"')) :]
    assert body.index(">h37<") < body.index(">h3<") < body.index(">h12<") < body.index(">h1<")
    assert body.index(">h2<") < body.index(">h10<")


def test_page_escapes_what_origins_and_inventories_send() -> None:
    evil = StatusRow(
        host="<img onerror=x>",
        name="a.example",
        address="127.0.0.1",
        port=443,
        mode="full",
        reasons=("<script>alert(1)</script>",),
        issuer="CN=<b>x</b>",
    )
    page = to_html([evil], NOW)
    assert "<script>alert" not in page and "<img onerror" not in page and "<b>x" not in page
