"""Ansible's ``!unsafe``: a string that is data, never a template.

A value loaded from a ``!unsafe`` YAML tag (inventory, vars files) is an :class:`UnsafeText`;
:func:`agent.plan.vars.is_template` says False for it, so ``{{ ... }}`` inside stays literal
wherever the value is used (Ansible's rule). Strings inside an ``!unsafe`` list or mapping are
marked too.
"""

from __future__ import annotations

from typing import Any


class UnsafeText(str):
    """A string never rendered as a template."""

    __slots__ = ()


def mark_unsafe(value: Any) -> Any:
    """``value`` with every string in it (recursively) an :class:`UnsafeText`."""
    if isinstance(value, str):
        return UnsafeText(value)
    if isinstance(value, list):
        return [mark_unsafe(v) for v in value]
    if isinstance(value, dict):
        return {k: mark_unsafe(v) for k, v in value.items()}
    return value
