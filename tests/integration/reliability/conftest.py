"""Reliability suite: fault matrix, interrupted runs, timeouts, secrets, load.

Each test starts its own private lab (``make_lab``) and records its figures; the figures are
printed in the terminal summary whatever the capture mode, and written to ``last-run.txt``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.modules.tls import services
from tests.integration.reliability import figures

OUT = Path(__file__).with_name("last-run.txt")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    text = figures.render()
    if not text:
        return
    terminalreporter.write_sep("=", "reliability figures")
    terminalreporter.write(text)
    try:
        OUT.write_text(text)
    except OSError:
        pass


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[str]:
    """A private state store; the in-process engine's services are reset afterwards."""
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    try:
        yield str(path)
    finally:
        services.configure(state_dir=None)
