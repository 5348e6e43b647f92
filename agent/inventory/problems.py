"""Collecting every problem in the inventory before stopping.

Loaders record problems instead of raising at the first one; :meth:`Problems.raise_if_any`
raises one :class:`InventoryProblems` (an :class:`~agent.errors.InventoryError`) whose ``str()``
has one line per problem, each starting with ``file:line:col``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from agent.errors import InventoryError, SourcePos

MAX_PROBLEMS = 200  # past this, further problems are counted, not listed


class InventoryProblems(InventoryError):
    """Several inventory problems at once; ``problems`` holds each as its own error."""

    def __init__(self, problems: Iterable[InventoryError], dropped: int = 0) -> None:
        self.problems = tuple(problems)
        self.dropped = dropped
        first = self.problems[0] if self.problems else InventoryError("bad inventory")
        super().__init__(first.message, where=first.where, hint=first.hint)

    def __str__(self) -> str:
        if not getattr(self, "problems", ()):
            return super().__str__()
        lines = [InventoryError.__str__(p) for p in self.problems]
        if self.dropped:
            lines.append(f"... and {self.dropped} more problems")
        return "\n".join(lines)


class Problems:
    """An ordered list of problems found while loading; nothing raises until asked."""

    def __init__(self) -> None:
        self.items: list[InventoryError] = []
        self.dropped = 0

    def add(self, where: SourcePos | str | None, message: str, hint: str = "") -> None:
        if len(self.items) >= MAX_PROBLEMS:
            self.dropped += 1
            return
        self.items.append(InventoryError(message, where=where, hint=hint))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        """Raises:
        InventoryError: one line per problem, if any was recorded (a single problem is raised
            as a plain :class:`InventoryError`).
        """
        if not self.items:
            return
        if len(self.items) == 1 and not self.dropped:
            raise self.items[0]
        raise InventoryProblems(self.items, self.dropped)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint suggesting the closest of ``choices`` to ``word``, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else ""
