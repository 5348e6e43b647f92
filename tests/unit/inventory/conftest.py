"""Helpers: write inventory files into a temporary directory and load them."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "inventory"

Write = Callable[..., str]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """write("hosts.yml", text) -> path; text is dedented; parents created."""

    def _write(name: str, text: str) -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return str(path)

    return _write
