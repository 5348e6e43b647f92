"""Collecting a plan's problems with their positions: :class:`PlanErrors`, the collector that
gathers every problem before stopping, and checks of plain values that record a problem
instead of raising (shared by :mod:`agent.plan.parse` and :mod:`agent.plan.task`)."""

from __future__ import annotations

from typing import Any

from agent.errors import PlanError, SourcePos
from agent.modules.args import suggest
from agent.plan.load import PosDict, PosList
from agent.plan.vars import is_template, syntax_error


class PlanErrors(PlanError):
    """Several problems in one plan; ``errors`` has each, in file order."""

    def __init__(self, errors: list[PlanError]) -> None:
        self.errors = errors
        first = errors[0]
        more = f"(and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        super().__init__(
            first.message, where=first.where, hint="; ".join(x for x in (first.hint, more) if x)
        )


class Collector:
    """Every problem found so far, in the order found."""

    def __init__(self) -> None:
        self.errors: list[PlanError] = []

    def add(self, message: str, where: SourcePos | str, hint: str = "") -> None:
        self.errors.append(PlanError(message, where=where, hint=hint))

    def raise_if_any(self) -> None:
        if self.errors:
            raise PlanErrors(self.errors)


def where_of(container: Any, key: Any) -> SourcePos:
    """The position of ``container[key]``, when the container kept positions."""
    if isinstance(container, (PosDict, PosList)):
        return container.where(key)
    return SourcePos("?")


def strings(value: Any, what: str, where: SourcePos, errs: Collector) -> tuple[str, ...]:
    """A string or a list of strings, as a tuple (empty, with a problem, otherwise)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    errs.add(f"{what} must be a string or a list of strings", where)
    return ()


def boolean(value: Any, what: str, where: SourcePos, errs: Collector) -> bool:
    """``value`` if it is a boolean (False, with a problem, otherwise)."""
    if isinstance(value, bool):
        return value
    errs.add(f"{what} must be true or false, got {value!r}", where)
    return False


def check_templates(value: Any, where: SourcePos, errs: Collector) -> None:
    """The template syntax of every string in ``value``, at its own position when known."""
    if isinstance(value, str):
        if is_template(value):
            problem = syntax_error(value)
            if problem:
                errs.add(problem, where)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_templates(v, where_of(value, i) if isinstance(value, PosList) else where, errs)
    elif isinstance(value, dict):
        for k, v in value.items():
            check_templates(v, where_of(value, k) if isinstance(value, PosDict) else where, errs)


def unknown_key(key: Any, accepted: tuple[str, ...], what: str) -> tuple[str, str]:
    """The message and hint for a key that is not one of ``accepted``."""
    names = ", ".join(accepted)
    return (f"unknown {what} key {key!r}{suggest(str(key), accepted)}", f"accepted: {names}")


def contains_template(value: Any) -> bool:
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, list):
        return any(contains_template(v) for v in value)
    if isinstance(value, dict):
        return any(contains_template(v) for v in value.values())
    return False
