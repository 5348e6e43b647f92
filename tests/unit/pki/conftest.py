"""Shared key material for pki tests (real cryptography; EC keys are fast)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.pki.issuers.localca import LocalCAIssuer, init_ca
from agent.pki.keys import PrivateKey

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def key() -> PrivateKey:
    return PrivateKey.generate("ec256")


@pytest.fixture
def make_ca(tmp_path: Path) -> Callable[..., LocalCAIssuer]:
    """``make_ca(intermediate=False, name=..., clock=...)``: a fresh local CA in tmp_path."""
    counter = iter(range(1000))

    def make(
        intermediate: bool = False,
        name: str = "Test CA",
        clock: Callable[[], datetime] = lambda: NOW,
    ) -> LocalCAIssuer:
        directory = tmp_path / f"ca{next(counter)}"
        init_ca(directory, intermediate=intermediate, name=name, now=NOW)
        return LocalCAIssuer(directory, clock=clock)

    return make
