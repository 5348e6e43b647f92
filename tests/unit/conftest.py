"""Every unit test runs under :mod:`tests.unit.guard`: no daemon, no root, no system files.

The audit hook is added once (audit hooks cannot be removed) and judges only while a test of
tests/unit runs, so integration tests in the same session are not affected.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.unit import guard

sys.addaudithook(guard.audit)


@pytest.fixture(autouse=True)
def _unit_guard() -> Iterator[None]:
    guard.take_violations()
    guard.set_active(True)
    try:
        yield
    finally:
        guard.set_active(False)
    found = guard.take_violations()
    if found:
        pytest.fail("; ".join(found), pytrace=False)
