"""Host patterns, as in Ansible's ``hosts:`` and ``--limit``.

A pattern is terms separated by ``,`` (or ``:``):

- ``all`` or ``*``: every host;
- a host name or a group name (a group means every host in it and in its child groups);
- a glob (``web*``, ``db?.example.com``) matched against group and host names;
- ``~regex`` (Python ``re.match``) matched against group and host names, of a shape whose
  matching time is bounded (:mod:`agent.inventory.safe_regex`);
- a subscript on any of those, over the matches in inventory order: ``web[0]``, ``web[-1]``,
  ``web[1:3]`` (inclusive), ``web[2:]``;
- ``&term``: intersection; ``!term``: exclusion.

Plain terms are unioned first, then every ``&`` term intersects, then every ``!`` term
removes, whatever their order in the text (Ansible's rule); a pattern of only ``&``/``!``
terms starts from ``all``. ``--limit`` is a second pattern intersected with the first.
Results are in Ansible's order: term by term, each group's hosts as in
:meth:`~agent.inventory.inventory.Inventory.group_hosts`, then matching host names in
declaration order. A plain name that is neither a host nor a group is an error.

A typo never widens the selection: a pattern with no term (``,``, ``:``, ``:::``), a stray or
empty bracket (``[``, ``]``, ``[]``, ``web]``) is a :class:`PatternError` (exit 2); a
``--limit`` that matches no host is an error too.
"""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING

from agent.errors import InventoryError
from agent.inventory.problems import did_you_mean
from agent.inventory.safe_regex import RegexError, compile_bounded, match_all
from agent.validate import is_ipv6

if TYPE_CHECKING:
    from agent.inventory.inventory import Inventory

_TERMS = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+):([0-9]*))\]$")
_GLOB_CHARS = ("*", "?", "[", ".")
_RANGE = re.compile(r"-?[0-9]{1,9}|[0-9]{1,9}:(?:[0-9]{1,9})?")
_BRACKETS = re.compile(r"(?:[^\[\]]|\[[^\[\]]+\])*")  # every [ closed, none empty or nested
MAX_PATTERN = 4096


class PatternError(InventoryError):
    """A host pattern that does not parse (a usage error: exit 2)."""

    exit_code = 2


def split_pattern(pattern: str, what: str = "host pattern") -> list[str]:
    """The terms of ``pattern`` (split on ``,``; else on ``:`` outside ``[...]``).

    Raises:
        PatternError: a ``[`` or ``]`` that is not part of a term (``web]``, ``[``).
    """
    if "," in pattern:
        parts = pattern.split(",")
    elif is_ipv6(pattern.strip()):
        parts = [pattern]
    else:
        parts = _TERMS.findall(pattern)
        stray = [c for c in _TERMS.sub("", pattern) if c in "[]"]
        if stray:
            raise PatternError(f"{what} {_shown(pattern)}: unbalanced {stray[0]!r}")
    return [p.strip() for p in parts if p.strip()]


def _shown(pattern: str) -> str:
    text = repr(pattern)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_term(term: str, pattern: str, what: str) -> None:
    """Refuse a term whose brackets cannot be what the user meant (``web[``, ``[]``)."""
    body = term.lstrip("&!")
    if body.startswith("~"):
        return
    if not _BRACKETS.fullmatch(body):
        raise PatternError(
            f"{what} {_shown(pattern)}: term {body!r} has an unbalanced or empty '[...]'",
            hint="a range is name[0], name[1:3] or name[2:]",
        )
    inside = body[body.rfind("[") + 1 : -1] if body.endswith("]") else ""
    looks_like_range = ":" in inside or re.fullmatch(r"-?[0-9]+", inside) is not None
    if looks_like_range and not _RANGE.fullmatch(inside):
        # 'web[0-9]' is a glob class, 'all[0:10^23]' a typo that would select nothing
        raise PatternError(
            f"{what} {_shown(pattern)}: {inside[:20]!r} is not a subscript",
            hint="a range is name[0], name[1:3] or name[2:] (numbers of at most 9 digits)",
        )


def order_terms(terms: list[str]) -> list[str]:
    """Plain terms first, then ``&`` terms, then ``!`` terms; ``all`` if no plain term."""
    plain = [t for t in terms if t[0] not in "&!"]
    inter = [t for t in terms if t[0] == "&"]
    excl = [t for t in terms if t[0] == "!"]
    return (plain or ["all"]) + inter + excl


def evaluate(inventory: Inventory, pattern: str, what: str = "host pattern") -> list[str]:
    """Names of the hosts matching ``pattern``, in inventory order.

    Raises:
        InventoryError: empty or malformed pattern, bad regex or subscript, unknown name.
    """
    if not isinstance(pattern, str) or not pattern.strip():
        raise PatternError(f"empty {what}")
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"{what} is longer than {MAX_PATTERN} characters")
    terms = split_pattern(pattern, what)
    if not terms:
        raise PatternError(
            f"{what} {_shown(pattern)} has no host or group name in it",
            hint="use 'all' for every host",
        )
    for term in terms:
        _check_term(term, pattern, what)
    result: list[str] = []
    for term in order_terms(terms):
        op, body = (term[0], term[1:]) if term[0] in "&!" else ("", term)
        if not body:
            raise PatternError(f"{what} {_shown(pattern)}: {term!r} names nothing")
        if body in inventory.hosts:
            found = [body]
        else:
            found = _match_term(inventory, body, pattern, what)
        if op == "!":
            drop = set(found)
            result = [n for n in result if n not in drop]
        elif op == "&":
            keep = set(found)
            result = [n for n in result if n in keep]
        else:
            have = set(result)
            result.extend(n for n in found if n not in have)
    return result


def _matcher(expr: str, pattern: str, what: str) -> re.Pattern[str]:
    try:
        if expr.startswith("~"):
            return compile_bounded(expr[1:])
        return re.compile(fnmatch.translate(expr))
    except (re.error, RegexError) as err:
        raise PatternError(f"{what} {_shown(pattern)}: bad expression {expr!r}: {err}") from None


def _matching(matcher: re.Pattern[str], names: list[str], pattern: str, what: str) -> list[str]:
    try:
        return match_all(matcher, names)
    except RegexError as err:
        raise PatternError(
            f"{what} {_shown(pattern)}: {err}", hint="simplify the expression"
        ) from None


def _match_term(inventory: Inventory, term: str, pattern: str, what: str) -> list[str]:
    expr: str = term
    subscript: tuple[int, int | None] | None = None
    if not term.startswith("~"):
        match = _SUBSCRIPT.match(term)
        if match:
            expr = match.group(1)
            if match.group(2) is not None:
                subscript = (int(match.group(2)), None)
            else:
                last = int(match.group(4)) if match.group(4) else -1
                subscript = (int(match.group(3)), last)
    matcher = _matcher(expr, pattern, what)
    names: dict[str, None] = {}  # insertion-ordered set
    groups = _matching(matcher, list(inventory.groups), pattern, what)
    for group in groups:
        names.update(dict.fromkeys(inventory.group_hosts(group)))
    if not groups or expr.startswith("~") or any(c in expr for c in _GLOB_CHARS):
        names.update(dict.fromkeys(_matching(matcher, list(inventory.hosts), pattern, what)))
    is_plain = not expr.startswith("~") and not any(c in expr for c in ("*", "?", "["))
    if not names and not groups and is_plain:
        hint = did_you_mean(expr, [*inventory.groups, *inventory.hosts])
        raise InventoryError(f"{what} {pattern!r}: no host or group named {expr!r}", hint=hint)
    ordered = list(names)
    if subscript is None:
        return ordered
    start, end = subscript
    if end is None:
        if not -len(ordered) <= start < len(ordered):
            raise InventoryError(
                f"{what} {pattern!r}: subscript [{start}] is past the "
                f"{len(ordered)} matches of {expr!r}"
            )
        return [ordered[start]]
    stop = len(ordered) - 1 if end == -1 else end
    return ordered[start : stop + 1]
