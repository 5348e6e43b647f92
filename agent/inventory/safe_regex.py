"""``~regex`` host patterns with bounded matching time.

Python's ``re`` backtracks: ``~(a+)+$`` against a name of forty ``a`` and an ``X`` never ends.
A pattern here is refused unless its structure keeps backtracking polynomial and small:

- no quantifier on a group that itself holds a quantifier or an alternation (``(a+)+``,
  ``(a?a?)+``, ``(a|aa)*``): the exponential cases;
- no backreferences or lookarounds;
- at most :data:`MAX_REPEATS` unbounded quantifiers and :data:`MAX_LENGTH` characters.

What remains can still be slow on a huge fleet, so matching also stops, with an error, once it
has spent :data:`BUDGET_SECONDS` in total.
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Iterable
from typing import Any

MAX_LENGTH = 200
MAX_REPEATS = 3
BUDGET_SECONDS = 2.0

_parser: Any = importlib.import_module("re._parser")  # sre_parse, without its deprecation
_c: Any = importlib.import_module("re._constants")


class RegexError(ValueError):
    """A ``~regex`` pattern refused or too slow (message says why)."""


def _walk(items: Any, inside_repeat: bool, count: list[int]) -> None:
    """Check one parsed subpattern (a list of (op, arg)); raise RegexError on a risky shape."""
    for op, arg in items:
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            low, high, sub = arg
            if low != high and inside_repeat:
                raise RegexError("a quantifier inside a repeated group (like '(a+)+')")
            if high == _c.MAXREPEAT:
                count[0] += 1
                if count[0] > MAX_REPEATS:
                    raise RegexError(f"more than {MAX_REPEATS} unbounded quantifiers")
            _walk(sub, inside_repeat or (low != high and high > 1), count)
        elif op == _c.BRANCH:
            if inside_repeat:
                raise RegexError("an alternation inside a repeated group (like '(a|aa)*')")
            for branch in arg[1]:
                _walk(branch, inside_repeat, count)
        elif op == _c.SUBPATTERN:
            _walk(arg[-1], inside_repeat, count)
        elif op in (_c.GROUPREF, _c.GROUPREF_EXISTS, _c.ASSERT, _c.ASSERT_NOT):
            raise RegexError("backreferences and lookarounds are not supported")
        elif op == _c.ATOMIC_GROUP:
            _walk(arg, inside_repeat, count)


def compile_bounded(expr: str) -> re.Pattern[str]:
    """Compile ``expr`` if its matching time is bounded (see the module docstring).

    Raises:
        RegexError: not a valid expression, or one of a refused shape.
    """
    if len(expr) > MAX_LENGTH:
        raise RegexError(f"longer than {MAX_LENGTH} characters")
    try:
        parsed = _parser.parse(expr)
        compiled = re.compile(expr)
    except (re.error, RecursionError, OverflowError) as err:
        raise RegexError(str(err)) from None
    _walk(parsed, False, [0])
    return compiled


def match_all(
    compiled: re.Pattern[str], names: Iterable[str], budget: float = BUDGET_SECONDS
) -> list[str]:
    """The names ``compiled`` matches (``re.match``), within ``budget`` seconds in all.

    Raises:
        RegexError: the budget ran out.
    """
    deadline = time.monotonic() + budget
    found: list[str] = []
    for name in names:  # bounded by the inventory and by the deadline
        if compiled.match(name):
            found.append(name)
        if time.monotonic() > deadline:
            raise RegexError(f"matching took more than {budget:g} s")
    return found
