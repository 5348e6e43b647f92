"""`make demo`'s sequence on a fresh lab, and the HTML report as a person sees it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import PRIVATE_FIRST

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_ends_with_every_origin_full_strict_on_a_rotated_certificate(
    tmp_path: Path,
) -> None:
    lab_dir = tmp_path / "lab"
    first = PRIVATE_FIRST + 30
    env = dict(
        os.environ,
        ORIGIN_AGENT_LAB_DIR=str(lab_dir),
        ORIGIN_AGENT_STATE_DIR=str(tmp_path / "state"),
        DEMO_FIRST=str(first),
        OA=f"{sys.executable} -m agent",
        PYTHONPATH=str(ROOT),
    )
    oa = [sys.executable, "-m", "agent"]
    try:
        demo = subprocess.run(
            [str(ROOT / "scripts" / "demo")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        out = demo.stdout
        for step in (
            "2. status",
            "3. bootstrap",
            "4. status",
            "5. rotate",
            "6. status",
            "stop the lab",
        ):
            assert step in out
        before_bootstrap = out.split("== 2. status")[1].split("== 3.")[0]

        def rows_in(text: str, mode: str) -> int:
            return sum(
                1 for line in text.splitlines() if line.startswith("origin") and f" {mode} " in line
            )

        assert rows_in(before_bootstrap, "Flexible") == 3
        after_bootstrap = out.split("== 4. status")[1].split("== 5.")[0]
        after_rotation = out.split("== 6. status")[1].split("== done")[0]
        assert rows_in(after_bootstrap, "Full (strict)") == 3
        assert rows_in(after_rotation, "Full (strict)") == 3
        status = subprocess.run(
            [*oa, "status", "-i", str(lab_dir / "inventory.yml"), "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        rows = json.loads(status.stdout)["rows"]
        assert [r["mode"] for r in rows] == ["strict"] * 3
        for row in rows:
            assert row["serial"][:16] not in after_bootstrap  # every serial is a new one
            assert row["serial"][:16] in after_rotation
            assert row["recorded"] is True
        assert (lab_dir / "status.html").exists()
    finally:
        subprocess.run([*oa, "lab", "down"], env=env, capture_output=True, timeout=60, cwd=ROOT)
    assert not lab_dir.exists()


def test_the_html_report_renders_in_a_browser(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from agent.jobs.status import StatusRow
    from agent.jobs.status_render import to_html

    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by scripts/setup-system"
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    rows = [
        StatusRow(
            host="web-1",
            name="web-1.example.test",
            address="127.0.0.1",
            port=443,
            mode="flexible",
            reasons=("no TLS on 127.0.0.1:443",),
        ),
        StatusRow(
            host="web-2",
            name="web-2.example.test",
            address="127.0.0.1",
            port=443,
            mode="full",
            reasons=("self-signed",),
            not_after=now + timedelta(days=12),
            days_left=12,
            serial="0a1b",
        ),
        StatusRow(
            host="web-3",
            name="web-3.example.test",
            address="127.0.0.1",
            port=443,
            mode="strict",
            not_after=now + timedelta(days=80),
            days_left=80,
            serial="ff00",
            issuer="CN=Lab CA",
        ),
    ]
    page = tmp_path / "status.html"
    page.write_text(to_html(rows, now))
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    shot = tmp_path / "status.png"
    done = subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1200,800", page.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    text = dom.stdout
    for expected in (
        "Renewals due per week",
        "web-1.example.test",
        "Flexible",
        "Full (strict)",
        "Full where Full (strict) is required",
        "<td>80</td>",
        "no TLS on 127.0.0.1:443",
    ):
        assert expected in text
    table = text[text.index("<table") :]
    assert table.index("web-1") < table.index("web-2") < table.index("web-3")  # most urgent first
