"""Fixtures that start real components for integration tests and stop them by PID.

``lab``: one session-wide lab of 5 hosts (origin101-103 nginx, origin104-105 apache2) on
127.0.1.101-105. Tests may change files on it but must leave every host running.
``make_lab``: a private lab for a test that breaks hosts; stopped at the end of the test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.lab import Lab

# Overridable so that two test runs on one machine can use different addresses.
SESSION_FIRST = int(os.environ.get("ORIGIN_AGENT_TEST_LAB_FIRST", "101"))
PRIVATE_FIRST = SESSION_FIRST + 50


def _skip_unless_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (the lab uses mount namespaces); run 'make test'")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    _skip_unless_root()
    the_lab = Lab.up(5, apache=2, first=SESSION_FIRST, dir=tmp_path_factory.mktemp("lab") / "state")
    try:
        yield the_lab
    finally:
        the_lab.down()


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[Callable[..., Lab]]:
    """Start a private lab: ``make_lab(count, apache=0, bare=0)``; several per test allowed."""
    _skip_unless_root()
    labs: list[Lab] = []
    next_first = [PRIVATE_FIRST]

    def start(count: int, *, apache: int = 0, bare: int = 0) -> Lab:
        new = Lab.up(
            count, apache=apache, bare=bare, first=next_first[0], dir=tmp_path / f"lab{len(labs)}"
        )
        labs.append(new)
        next_first[0] += count
        return new

    try:
        yield start
    finally:
        for started in labs:
            started.down()


@pytest.fixture
def app() -> Iterator[int]:
    """A real HTTP application on 127.0.0.1 (its port), for origins to proxy to."""
    from tests.apps import serve_app

    with serve_app() as port:
        yield port
