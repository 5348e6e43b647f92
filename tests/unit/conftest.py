"""Every unit test runs under :mod:`tests.unit.guard`: no daemon, no root, no system files.

The audit hook is added once (audit hooks cannot be removed) and judges only while a test of
tests/unit runs, so integration tests in the same session are not affected.
"""

from __future__ import annotations

import datetime
import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis.errors import HypothesisException

from tests import hostile
from tests.unit import guard

LAST_RUN = Path(__file__).resolve().parents[1] / "hostile-last-run.txt"

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


# -- hostile input: count what the `hostile` tests try and see (tests/hostile.py) -------------


def _counting(inner: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a hypothesis test's body: count each example; an exception that is neither a failed
    assertion nor hypothesis's own is a traceback the input caused."""

    @functools.wraps(inner)
    def counted(*args: Any, **kwargs: Any) -> Any:
        hostile.TALLY.hypothesis_examples += 1
        try:
            return inner(*args, **kwargs)
        except (AssertionError, HypothesisException):
            raise
        except Exception as err:
            hostile.TALLY.traceback_seen(f"{type(err).__name__}: {err}")
            raise

    return counted


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("hostile") is None:
        yield
        return
    handle = getattr(getattr(item, "obj", None), "hypothesis", None)
    inner = getattr(handle, "inner_test", None)
    if handle is None or inner is None:
        hostile.TALLY.fixed_cases += 1
        yield
        return
    handle.inner_test = _counting(inner)
    try:
        yield
    finally:
        handle.inner_test = inner


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    if call.when != "call" or item.get_closest_marker("hostile") is None:
        return
    report = outcome.get_result()
    captured = report.capstdout + report.capstderr + report.caplog
    if hostile.planted_in(captured):
        hostile.TALLY.secret_seen(item.nodeid)
    is_hypothesis = hasattr(getattr(item, "obj", None), "hypothesis")
    error = call.excinfo
    if (
        error is not None
        and not is_hypothesis
        and not error.errisinstance((AssertionError, pytest.fail.Exception, pytest.skip.Exception))
    ):
        hostile.TALLY.traceback_seen(f"{item.nodeid}: {error.typename}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hostile.TALLY.inputs == 0:
        return
    command = "pytest " + " ".join(session.config.invocation_params.args)
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    LAST_RUN.write_text(hostile.summary(command, date))
