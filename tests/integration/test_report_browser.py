"""The HTML report at 50 hosts, rendered by a real headless chromium: problem rows come first
on the screenshot (kept in tests/artifacts/ for people to look at), and the filter box works."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.jobs.report_html import COLOURS, to_html
from tests.pngpixels import rows as png_rows
from tests.unit.jobs.test_report_html import NOW, fleet

pytestmark = pytest.mark.integration

ARTIFACTS = Path(
    os.environ.get("ORIGIN_AGENT_TEST_ARTIFACTS", Path(__file__).parents[1] / "artifacts")
)


def _chromium(tmp_path: Path) -> list[str]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by scripts/setup-system"
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]


def _hex(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def _first_y(pixels: list[list[tuple[int, int, int]]], colour: str) -> int:
    want = _hex(colour)
    return next(y for y, line in enumerate(pixels) if line.count(want) > 200)


def test_screenshot_at_50_hosts_shows_the_broken_host_first(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(to_html(fleet(50), NOW))
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-50-hosts.png"
    done = subprocess.run(
        [*_chromium(tmp_path), f"--screenshot={shot}", "--window-size=1400,1000", page.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pixels = png_rows(shot)
    flexible = _first_y(pixels, COLOURS["flexible"][0])  # h37, broken on purpose
    full = _first_y(pixels, COLOURS["full"][0])  # h3, self-signed
    strict = _first_y(pixels, COLOURS["strict"][0])  # the healthy rows
    assert flexible < full < strict


def test_filter_box_hides_rows_that_do_not_match(tmp_path: Path) -> None:
    html = to_html(fleet(50), NOW).replace(
        "</script>",
        "box.value='apache';box.dispatchEvent(new Event('input'));</script>",
    )
    page = tmp_path / "filtered.html"
    page.write_text(html)
    dom = subprocess.run(
        [*_chromium(tmp_path), "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "12 of 50 shown" in dom  # every fourth host runs apache
    assert dom.count('style="display: none;"') == 38
