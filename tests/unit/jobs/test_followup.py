"""After a run: who gets which alert, what the metrics say about the served certificate."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.inventory.model import Host
from agent.jobs import followup
from agent.jobs.status import StatusRow
from agent.report.notify import Problem
from agent.state.records import IssuedCertificate
from agent.state.store import Store
from tests.receiver import receiver

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"notify": [], "inventory": ["prod.yml"]}
    base.update(kw)
    return argparse.Namespace(**base)


def test_host_variable_webhooks_hear_of_their_own_hosts_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(followup.NOTIFY_ENV, raising=False)
    with receiver("127.0.0.7") as team_a, receiver("127.0.0.8") as everyone:
        hosts = [
            Host("a1", {"notify_urls": team_a.url}),
            Host("a2", {"notify_urls": [team_a.url]}),
            Host("b1", {}),
        ]
        problems = [Problem("b1", "failed", "boom"), Problem("a2", "unreachable", "refused")]
        args = _args(notify=[everyone.url])
        followup.notify_all(args, hosts, problems, command="rotate", counts={}, exit_code=1)
        followup.notify_all(args, hosts, [], command="rotate", counts={}, exit_code=0)
    assert [[p["host"] for p in b["origin_agent"]["problems"]] for b in team_a.bodies] == [["a2"]]
    assert [[p["host"] for p in b["origin_agent"]["problems"]] for b in everyone.bodies] == [
        ["b1", "a2"]
    ]


def test_environment_webhooks_are_for_rotate_and_status_posts_only_to_notify(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with receiver("127.0.0.7") as rx:
        monkeypatch.setenv(followup.NOTIFY_ENV, rx.url)
        hosts = [Host("a1", {"notify_urls": rx.url})]
        problems = [Problem("a1", "expiring", "3 days left (limit 14)")]
        followup.notify_all(_args(), hosts, problems, command="status", counts={}, exit_code=4)
        assert rx.bodies == []
        followup.notify_all(_args(), hosts, problems, command="rotate", counts={}, exit_code=0)
    assert len(rx.bodies) == 1  # one message even though the URL is given twice


def test_last_rotation_is_when_the_served_certificate_was_issued_and_renewal_is_the_policys(
    tmp_path: Path,
) -> None:
    store = Store(str(tmp_path / "state"))
    for fp, when in (("old", NOW - timedelta(days=60)), ("new", NOW - timedelta(days=1))):
        store.record_certificate(
            IssuedCertificate(
                host="h1",
                name="a.example",
                serial=fp,
                fingerprint=fp,
                pin="p",
                not_after=when + timedelta(days=90),
                backend="localca",
                issued_at=when,
            )
        )
    row = StatusRow(
        host="h1",
        name="a.example",
        address="127.0.0.1",
        port=443,
        mode="strict",
        not_after=NOW + timedelta(days=30),
        days_left=30,
        fingerprint="old",  # the rotation to "new" did not reach the origin
        renew_at=NOW + timedelta(days=23),  # the renewal policy's verdict, as status gives it
    )
    (sample,) = followup.cert_samples([row], store)
    assert sample.last_rotation == NOW - timedelta(days=60)
    assert sample.renewal_due == NOW + timedelta(days=23)
    store.close()


def test_expiry_and_mode_problems() -> None:
    rows = [
        StatusRow("h1", "a", "127.0.0.1", 443, "strict", days_left=3),
        StatusRow("h2", "b", "127.0.0.1", 443, "flexible"),
        StatusRow("h3", "c", "127.0.0.1", 443, "strict", days_left=90),
    ]
    got = followup.expiry_problems(rows, 14, "strict")
    assert [(p.host, p.kind, p.detail) for p in got] == [
        ("h1", "expiring", "3 days left (limit 14)"),
        ("h2", "expiring", "no certificate served (limit 14)"),
        ("h2", "mode", "ready for Flexible"),
    ]
