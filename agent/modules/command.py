"""``command`` and ``shell``: run a program, optionally guarded by ``creates``/``removes``.

``command`` runs an argv list without a shell. A string is split into words *before* templates
are rendered (see :func:`agent.modules.args.split_argv`), so a variable's value is always exactly
one argument, whatever it contains. ``shell`` runs its text with ``/bin/sh -c``: variables
rendered into it are shell text, so quote them with the ``quote`` filter.

In check mode a command that would run is reported as changed and not run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from agent.modules.base import Arg, Change, Context, Module, RunCommand
from agent.transport.base import Connection


@dataclass(frozen=True)
class GuardFacts:
    """Whether the ``creates`` and ``removes`` paths exist (None when not given)."""

    creates_exists: bool | None = None
    removes_exists: bool | None = None


_GUARDS = (
    Arg("creates", "path", help="skip when this path exists"),
    Arg("removes", "path", help="skip when this path does not exist"),
    Arg("stdin", "str", secret=True, help="text fed to the command's standard input"),
    Arg("chdir", "path", help="directory to run in"),
    Arg("timeout", "int", help="seconds before the command is killed"),
)


def _gather_guards(conn: Connection, params: Mapping[str, Any]) -> GuardFacts:
    creates = params.get("creates")
    removes = params.get("removes")
    return GuardFacts(
        creates_exists=conn.stat(creates).exists if creates else None,
        removes_exists=conn.stat(removes).exists if removes else None,
    )


def _guarded(params: Mapping[str, Any], facts: GuardFacts, argv: list[str]) -> list[Change]:
    if facts.creates_exists is True or facts.removes_exists is False:
        return []
    if params.get("chdir"):
        argv = ["env", "-C", params["chdir"], "--", *argv]
    stdin = params.get("stdin")
    return [
        RunCommand(
            argv=tuple(argv),
            stdin=stdin.encode() if isinstance(stdin, str) else None,
            timeout=float(params["timeout"]) if params.get("timeout") else None,
        )
    ]


class CommandModule(Module):
    """Run ``cmd`` (argv) unless ``creates`` exists or ``removes`` does not."""

    name: ClassVar[str] = "command"
    example: ClassVar[str] = """\
- name: nginx version
  command: nginx -v
  register: version
"""
    free_form: ClassVar[str | None] = "cmd"
    args: ClassVar[tuple[Arg, ...]] = (
        Arg("cmd", "argv", required=True, help="program and arguments"),
        *_GUARDS,
    )

    def gather(self, conn: Connection, params: Mapping[str, Any], ctx: Context) -> GuardFacts:
        return _gather_guards(conn, params)

    def plan(self, params: Mapping[str, Any], facts: GuardFacts, ctx: Context) -> list[Change]:
        return _guarded(params, facts, list(params["cmd"]))


class ShellModule(Module):
    """Run ``cmd`` with ``/bin/sh -c`` unless ``creates`` exists or ``removes`` does not."""

    name: ClassVar[str] = "shell"
    example: ClassVar[str] = """\
- name: disk use of the webroot
  shell: du -sh /var/www | cut -f1
"""
    free_form: ClassVar[str | None] = "cmd"
    args: ClassVar[tuple[Arg, ...]] = (
        Arg("cmd", "str", required=True, help="shell text"),
        Arg("executable", "path", default="/bin/sh", help="the shell"),
        *_GUARDS,
    )

    def gather(self, conn: Connection, params: Mapping[str, Any], ctx: Context) -> GuardFacts:
        return _gather_guards(conn, params)

    def plan(self, params: Mapping[str, Any], facts: GuardFacts, ctx: Context) -> list[Change]:
        return _guarded(params, facts, [params["executable"], "-c", params["cmd"]])
