"""``copy`` and ``template``: make a file on the host hold given bytes, mode and owner.

``copy`` takes ``content`` or a controller-side ``src`` (relative to the plan's directory);
``template`` renders a controller-side jinja2 file with the host's variables (StrictUndefined;
errors name the template file and line). Both compare with what the host has and write only
when the bytes differ (atomically, mode set from the first byte), else fix mode/owner only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from agent.errors import PlanError
from agent.modules.base import (
    Arg,
    Change,
    Context,
    Module,
    ModuleError,
    SetAttributes,
    WriteFile,
)
from agent.modules.facts import PathFacts, attribute_drift, owner_of, path_facts
from agent.transport.base import Connection

MAX_SOURCE = 16 * 1024 * 1024


@dataclass(frozen=True)
class FileFacts:
    """The desired bytes (read or rendered on the controller) and what the host has."""

    desired: bytes
    current: PathFacts


def _read_source(src: str, ctx: Context) -> bytes:
    path = src if os.path.isabs(src) else os.path.join(ctx.plan_dir, src)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_SOURCE + 1)
    except OSError as err:
        raise PlanError(f"cannot read {path}: {err.strerror}", where=ctx.host) from err
    if len(data) > MAX_SOURCE:
        raise PlanError(f"{path} is too large to copy", where=ctx.host)
    return data


def plan_file(params: Mapping[str, Any], facts: FileFacts, ctx: Context) -> list[Change]:
    """Changes that make ``params['dest']`` hold ``facts.desired`` with mode and owner."""
    dest: str = params["dest"]
    st = facts.current.stat
    try:
        owner = owner_of(params.get("owner"))
    except ValueError as err:
        raise ModuleError(str(err), host=ctx.host) from None
    if st.exists and st.kind not in ("file",):
        raise ModuleError(f"{dest} exists and is a {st.kind}, not a file", host=ctx.host)
    mode: int | None = params.get("mode")
    secret = bool(params.get("secret"))
    if not st.exists or facts.current.content != facts.desired:
        if mode is None:
            mode = st.mode if st.exists else 0o644
        return [
            WriteFile(
                dest,
                facts.desired,
                mode=mode,
                owner=owner,
                secret=secret,
                before=facts.current.content,
            )
        ]
    try:
        new_mode, new_owner = attribute_drift(facts.current, mode, owner)
    except ValueError as err:
        raise ModuleError(str(err), host=ctx.host) from None
    if new_mode is None and new_owner is None:
        return []
    return [SetAttributes(dest, mode=new_mode, owner=new_owner)]


_COMMON = (
    Arg("dest", "path", required=True, help="file on the host"),
    Arg("mode", "mode", help="permission bits, e.g. '0644' (default: keep, or 0644 when new)"),
    Arg("owner", "str", help="'user', 'user:group' or ':group'"),
    Arg("secret", "bool", default=False, help="never show the content (diffs, events)"),
)


class CopyModule(Module):
    """Make ``dest`` hold ``content`` or the bytes of controller file ``src``."""

    name: ClassVar[str] = "copy"
    example: ClassVar[str] = """\
- name: a maintenance page
  copy:
    dest: /var/www/html/maintenance.html
    content: "<p>back soon</p>"
    mode: "0644"
"""
    args: ClassVar[tuple[Arg, ...]] = (
        Arg("content", "str", help="the file's text"),
        Arg("src", "str", help="controller file, relative to the plan"),
        *_COMMON,
    )

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[str]:
        if (params.get("content") is None) == (params.get("src") is None):
            return ["copy needs exactly one of 'content' and 'src'"]
        if params.get("owner"):
            try:
                owner_of(params["owner"])
            except ValueError as err:
                return [str(err)]
        return []

    def gather(self, conn: Connection, params: Mapping[str, Any], ctx: Context) -> FileFacts:
        if params.get("content") is not None:
            desired = str(params["content"]).encode("utf-8")
        else:
            desired = _read_source(params["src"], ctx)
        return FileFacts(
            desired,
            path_facts(conn, params["dest"], read=True, owner=owner_of(params.get("owner"))),
        )

    def plan(self, params: Mapping[str, Any], facts: FileFacts, ctx: Context) -> list[Change]:
        return plan_file(params, facts, ctx)


class TemplateModule(Module):
    """Make ``dest`` hold controller template ``src`` rendered with the host's variables."""

    name: ClassVar[str] = "template"
    example: ClassVar[str] = """\
- name: site settings
  template:
    src: templates/settings.j2
    dest: /etc/app/settings.ini
    owner: root:www-data
    mode: "0640"
"""
    args: ClassVar[tuple[Arg, ...]] = (
        Arg(
            "src", "str", required=True, help="jinja2 file on the controller, relative to the plan"
        ),
        *_COMMON,
    )

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[str]:
        return CopyModule.check_params({**params, "content": None})

    def gather(self, conn: Connection, params: Mapping[str, Any], ctx: Context) -> FileFacts:
        if ctx.render is None:
            raise ModuleError("template rendering is not available here", host=ctx.host)
        source = params["src"]
        path = source if os.path.isabs(source) else os.path.join(ctx.plan_dir, source)
        try:
            text = _read_source(source, ctx).decode("utf-8")
        except UnicodeDecodeError as err:
            raise PlanError(f"{path} is not UTF-8 text", where=ctx.host) from err
        desired = ctx.render(text, path).encode("utf-8")
        return FileFacts(
            desired,
            path_facts(conn, params["dest"], read=True, owner=owner_of(params.get("owner"))),
        )

    def plan(self, params: Mapping[str, Any], facts: FileFacts, ctx: Context) -> list[Change]:
        return plan_file(params, facts, ctx)
