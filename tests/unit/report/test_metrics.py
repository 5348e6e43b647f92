"""Metrics textfile: parsed back with prometheus-client's own parser."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.report.metrics import CertSample, MetricsError, RunSample, write

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _write(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    certs = [
        CertSample(
            "h1", "a.example", "strict", NOW + timedelta(days=60), NOW + timedelta(days=30), NOW
        ),
        CertSample("h2", "b.example", "flexible"),
    ]
    run = RunSample({"rotated": 3, "failed": 1}, 4.5, NOW, 1)
    write(path, certs, run, probed_at=NOW)
    return _samples(path.read_text())


def test_textfile_holds_per_name_and_per_run_values(tmp_path: Path) -> None:
    got = _write(tmp_path / "oa.prom")
    hn = (("host", "h1"), ("name", "a.example"))
    assert (
        got[("origin_agent_certificate_expiry_timestamp_seconds", hn)]
        == (NOW + timedelta(days=60)).timestamp()
    )
    assert (
        got[("origin_agent_certificate_renewal_due_timestamp_seconds", hn)]
        == (NOW + timedelta(days=30)).timestamp()
    )
    assert got[("origin_agent_certificate_last_rotation_timestamp_seconds", hn)] == NOW.timestamp()
    assert got[("origin_agent_ssl_mode", tuple(sorted((*hn, ("mode", "strict")))))] == 1
    assert got[("origin_agent_ssl_mode", tuple(sorted((*hn, ("mode", "full")))))] == 0
    h2 = (("host", "h2"), ("name", "b.example"))
    assert got[("origin_agent_ssl_mode", tuple(sorted((*h2, ("mode", "flexible")))))] == 1
    assert ("origin_agent_certificate_expiry_timestamp_seconds", h2) not in got
    assert got[("origin_agent_rotate_hosts", (("result", "rotated"),))] == 3
    assert got[("origin_agent_rotate_hosts", (("result", "failed"),))] == 1
    assert got[("origin_agent_rotate_hosts", (("result", "not_run"),))] == 0
    assert got[("origin_agent_rotate_duration_seconds", ())] == 4.5
    assert got[("origin_agent_rotate_exit_code", ())] == 1
    assert got[("origin_agent_status_timestamp_seconds", ())] == NOW.timestamp()


def test_textfile_replaces_the_old_one_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "oa.prom"
    path.write_text("old\n")
    inode = path.stat().st_ino
    _write(path)
    assert os.listdir(tmp_path) == ["oa.prom"]
    assert path.stat().st_ino != inode  # renamed over, not rewritten in place


def test_unwritable_directory_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(MetricsError) as caught:
        write(tmp_path / "missing" / "oa.prom", [], None)
    assert (
        str(caught.value)
        == f"{tmp_path}/missing/oa.prom: cannot write metrics: No such file or directory"
    )


def test_name_must_end_in_prom(tmp_path: Path) -> None:
    with pytest.raises(MetricsError, match="must end in .prom"):
        write(tmp_path / "oa.txt", [], None)


def test_readme_alert_rules_use_metrics_we_export(tmp_path: Path) -> None:
    import re

    import yaml

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = readme.split("Example alert rules:\n\n```yaml\n", 1)[1].split("```", 1)[0]
    rules = yaml.safe_load(block)["groups"][0]["rules"]
    exported = {name for name, _ in _write(tmp_path / "oa.prom")}
    used = {m for r in rules for m in re.findall(r"origin_agent_[a-z_]+", r["expr"])}
    assert len(rules) == 5 and used and used <= exported
