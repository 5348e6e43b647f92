"""``meta``: an instruction to the runner, not a change on the host.

``meta: flush_handlers`` runs the handlers notified so far, there and then (as Ansible does);
``meta: noop`` does nothing. The runner carries them out without connecting to the host; the
module exists so that plans are validated like every other task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from agent.modules.base import Arg, Change, Context, Module

ACTIONS = ("flush_handlers", "noop")


class MetaModule(Module):
    """An instruction to the runner: ``flush_handlers`` runs the handlers notified so far;
    ``noop`` does nothing."""

    name: ClassVar[str] = "meta"
    example: ClassVar[str] = """\
- name: reload now, not at the end of the play
  meta: flush_handlers
"""
    args: ClassVar[tuple[Arg, ...]] = (
        Arg("action", "str", required=True, choices=ACTIONS, help="what the runner does"),
    )
    free_form: ClassVar[str | None] = "action"

    def plan(self, params: Mapping[str, Any], facts: Any, ctx: Context) -> list[Change]:
        return []
