"""Host patterns, as in Ansible's ``hosts:`` and ``--limit``.

A pattern is terms separated by ``,`` (or ``:``):

- ``all`` or ``*``: every host;
- a host name or a group name (a group means every host in it and in its child groups);
- a glob (``web*``, ``db?.example.com``) matched against group and host names;
- ``~regex`` (Python ``re.match``) matched against group and host names;
- a subscript on any of those, over the matches in inventory order: ``web[0]``, ``web[-1]``,
  ``web[1:3]`` (inclusive), ``web[2:]``;
- ``&term``: intersection; ``!term``: exclusion.

Plain terms are unioned first, then every ``&`` term intersects, then every ``!`` term
removes, whatever their order in the text (Ansible's rule); a pattern of only ``&``/``!``
terms starts from ``all``. ``--limit`` is a second pattern intersected with the first.
Results are in Ansible's order: term by term, each group's hosts as in
:meth:`~agent.inventory.inventory.Inventory.group_hosts`, then matching host names in
declaration order. A plain name that is neither a host nor a group is an error.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from typing import TYPE_CHECKING

from agent.errors import InventoryError
from agent.inventory.problems import did_you_mean

if TYPE_CHECKING:
    from agent.inventory.inventory import Inventory

_TERMS = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+):([0-9]*))\]$")
_GLOB_CHARS = ("*", "?", "[", ".")


def split_pattern(pattern: str) -> list[str]:
    """The terms of ``pattern`` (split on ``,``; else on ``:`` outside ``[...]``)."""
    if "," in pattern:
        parts = pattern.split(",")
    else:
        try:
            ipaddress.IPv6Address(pattern.strip())
            parts = [pattern]
        except ValueError:
            parts = _TERMS.findall(pattern)
    return [p.strip() for p in parts if p.strip()]


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
        raise InventoryError(f"empty {what}")
    result: list[str] = []
    for term in order_terms(split_pattern(pattern)):
        op, body = (term[0], term[1:]) if term[0] in "&!" else ("", term)
        if not body:
            raise InventoryError(f"{what} {pattern!r}: {term!r} names nothing")
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
            return re.compile(expr[1:])
        return re.compile(fnmatch.translate(expr))
    except re.error as err:
        raise InventoryError(f"{what} {pattern!r}: bad expression {expr!r}: {err}") from None


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
    groups = [g for g in inventory.groups if matcher.match(g)]
    for group in groups:
        names.update(dict.fromkeys(inventory.group_hosts(group)))
    if not groups or expr.startswith("~") or any(c in expr for c in _GLOB_CHARS):
        names.update(dict.fromkeys(h for h in inventory.hosts if matcher.match(h)))
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
