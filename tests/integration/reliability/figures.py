"""Figures the reliability tests measure, printed at the end of the run (see conftest.py)
and written to ``tests/integration/reliability/last-run.txt``."""

from __future__ import annotations

import threading

_lock = threading.Lock()
SECTIONS: dict[str, list[str]] = {}


def record(section: str, *lines: str) -> None:
    """Add ``lines`` under ``section`` (a section is replaced when recorded again)."""
    with _lock:
        SECTIONS[section] = list(lines)


def render() -> str:
    with _lock:
        parts = [f"== {name}\n" + "\n".join(lines) for name, lines in SECTIONS.items()]
    return "\n\n".join(parts) + ("\n" if parts else "")
