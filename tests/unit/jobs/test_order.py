"""Hosts numbered h1..h10 are listed as people number them, in every report."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.inventory import Host
from agent.jobs import pins, promote
from agent.jobs.order import natural_key
from agent.jobs.status import StatusRow, urgency
from agent.jobs.status_render import table, to_html

NOW = datetime(2026, 6, 1, tzinfo=UTC)
HOSTS = ["h10", "h2", "H1", "h02", "web10.eu", "web9.eu"]


def test_natural_key_orders_digit_runs_as_numbers_and_is_total() -> None:
    assert sorted(HOSTS, key=natural_key) == ["H1", "h02", "h2", "h10", "web9.eu", "web10.eu"]
    assert sorted(["10.0.0.10", "10.0.0.9"], key=natural_key) == ["10.0.0.9", "10.0.0.10"]


def _row(host: str) -> StatusRow:
    return StatusRow(host=host, name=f"{host}.example", address="192.0.2.1", port=443, mode="full")


def test_the_html_and_text_reports_list_h2_before_h10() -> None:
    rows = sorted((_row(h) for h in ("h10", "h2", "h1")), key=urgency)
    page = to_html(rows, NOW)
    assert page.index("<td>h1</td>") < page.index("<td>h2</td>") < page.index("<td>h10</td>")
    lines = [line.split()[0] for line in table(rows).splitlines()[1:4]]
    assert lines == ["h1", "h2", "h10"]


def test_pins_and_promote_list_hosts_in_natural_order() -> None:
    refused = {"ansible_host": "127.0.0.1", "ansible_port": 9, "https_port": 9}  # discard port
    hosts = [Host(h, dict(refused)) for h in ("h10", "h2")]
    assert [r.host for r in pins.collect(hosts, timeout=2.0)] == ["h2", "h10"]
    strict = [
        StatusRow(host=h, name="n", address="", port=443, mode="strict") for h in ("h10", "h2")
    ]
    assert promote.decide("z", "full", strict).hosts == ("h2", "h10")
