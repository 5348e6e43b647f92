"""``file``: a path's kind (directory, link, file, absent, touch), mode and owner.

``touch`` creates an empty file when none is there and otherwise only fixes mode/owner (it does
not bump the modification time, so re-runs report no change). ``file`` requires the file to
exist. ``link`` points ``path`` at ``src`` with an atomic swap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from agent.modules.base import (
    Arg,
    Change,
    Context,
    MakeDir,
    Module,
    ModuleError,
    RemovePath,
    SetAttributes,
    SwapSymlink,
    WriteFile,
)
from agent.modules.facts import PathFacts, attribute_drift, owner_of, path_facts
from agent.transport.base import Connection, FileStat, Owner

STATES = ("file", "directory", "link", "absent", "touch")


class FileModule(Module):
    """Converge one path to ``state``."""

    name: ClassVar[str] = "file"
    example: ClassVar[str] = """\
- name: ACME webroot
  file:
    path: /var/www/acme
    state: directory
    mode: "0755"
"""
    args: ClassVar[tuple[Arg, ...]] = (
        Arg("path", "path", required=True, help="the path on the host"),
        Arg("state", "str", default="file", choices=STATES, help="what the path should be"),
        Arg("mode", "mode", help="permission bits, e.g. '0755'"),
        Arg("owner", "str", help="'user', 'user:group' or ':group'"),
        Arg("src", "str", help="link target (state: link)"),
        Arg("force", "bool", default=False, help="replace a file or empty dir with the link"),
    )

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[str]:
        problems = []
        if params["state"] == "link" and not params.get("src"):
            problems.append("state 'link' needs 'src' (the link target)")
        if params["state"] != "link" and params.get("src"):
            problems.append("'src' is only for state 'link'")
        if params.get("owner"):
            try:
                owner_of(params["owner"])
            except ValueError as err:
                problems.append(str(err))
        if params["state"] in ("absent", "link") and (
            params.get("mode") is not None or params.get("owner")
        ):
            problems.append(f"state {params['state']!r} takes no 'mode' or 'owner'")
        return problems

    def gather(self, conn: Connection, params: Mapping[str, Any], ctx: Context) -> PathFacts:
        return path_facts(conn, params["path"], owner=owner_of(params.get("owner")))

    def plan(self, params: Mapping[str, Any], facts: PathFacts, ctx: Context) -> list[Change]:
        path: str = params["path"]
        state: str = params["state"]
        st = facts.stat
        owner = owner_of(params.get("owner"))
        mode: int | None = params.get("mode")
        if state == "absent":
            return [RemovePath(path, recursive=st.kind == "dir")] if st.exists else []
        if state == "link":
            return _plan_link(path, params["src"], params["force"], st, ctx)
        created = _plan_presence(path, state, mode, owner, st, ctx)
        if created is not None:
            return created
        try:
            new_mode, new_owner = attribute_drift(facts, mode, owner)
        except ValueError as err:
            raise ModuleError(str(err), host=ctx.host) from None
        if new_mode is None and new_owner is None:
            return []
        return [SetAttributes(path, mode=new_mode, owner=new_owner)]


def _plan_link(path: str, target: str, force: bool, st: FileStat, ctx: Context) -> list[Change]:
    """Point ``path`` at ``target``: nothing, a swap, or a refusal to replace what is there."""
    if st.exists and st.kind == "link":
        return (
            [] if st.link_target == target else [SwapSymlink(path, target, previous=st.link_target)]
        )
    if st.exists and not force:
        raise ModuleError(
            f"{path} exists and is a {st.kind}, not a link",
            host=ctx.host,
            hint="set force: true to replace it",
        )
    if st.exists and st.kind == "dir":
        raise ModuleError(f"{path} is a directory; not replacing it with a link", host=ctx.host)
    return [SwapSymlink(path, target)]


def _plan_presence(
    path: str, state: str, mode: int | None, owner: Owner | None, st: FileStat, ctx: Context
) -> list[Change] | None:
    """The change that creates ``path`` for ``state`` (directory, touch, file), or None when a
    path of the right kind is already there and only its attributes remain to compare.

    Raises:
        ModuleError: the path is of the wrong kind, or missing for state ``file``.
    """
    if state == "directory":
        if not st.exists:
            return [MakeDir(path, mode=mode if mode is not None else 0o755, owner=owner)]
        if st.kind != "dir":
            raise ModuleError(f"{path} exists and is a {st.kind}, not a directory", host=ctx.host)
    elif state == "touch":
        if not st.exists:
            created = WriteFile(
                path, b"", mode=mode if mode is not None else 0o644, owner=owner, before=None
            )
            return [created]
        if st.kind == "link":
            raise ModuleError(f"{path} is a link", host=ctx.host)
    else:  # file
        if not st.exists:
            raise ModuleError(
                f"{path} does not exist", host=ctx.host, hint="use state: touch to create it"
            )
        if st.kind != "file":
            raise ModuleError(f"{path} is a {st.kind}, not a file", host=ctx.host)
    return None
