"""``package``: OS packages present or absent, with apt (Debian/Ubuntu) or dnf (RHEL/Fedora).

The manager is detected from the host (``/usr/bin/apt-get`` or ``/usr/bin/dnf``); which
packages are installed comes from ``dpkg-query`` or ``rpm -q``. Only missing packages are
installed and only installed ones removed, so a re-run changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from agent.modules.base import Arg, Change, Context, Module, ModuleError, RunCommand
from agent.transport.base import Connection, Result

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._:~-]*$")


@dataclass(frozen=True)
class PackageFacts:
    manager: str  # "apt", "dnf" or ""
    installed: frozenset[str]


def parse_dpkg_query(result: Result) -> frozenset[str]:
    """Parse ``dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' NAMES...`` output.

    Names dpkg does not know go to stderr; an installed package shows status ``ii``.
    """
    out: set[str] = set()
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith("ii"):
            out.add(parts[0].split(":")[0])
    return frozenset(out)


def parse_rpm_query(result: Result, names: list[str]) -> frozenset[str]:
    """Parse ``rpm -q --qf '%{NAME}\\n' NAMES...``; unknown ones print 'package X is not
    installed'."""
    found = {
        ln.strip() for ln in result.stdout.splitlines() if ln.strip() and " " not in ln.strip()
    }
    return frozenset(n for n in names if n in found)


class PackageModule(Module):
    """Make packages ``name`` be ``state`` (present/absent)."""

    name: ClassVar[str] = "package"
    example: ClassVar[str] = """\
- name: nginx installed
  package:
    name: [nginx]
    update_cache: true
"""
    free_form: ClassVar[str | None] = "name"
    args: ClassVar[tuple[Arg, ...]] = (
        Arg("name", "list", required=True, elements="str", help="package name(s)"),
        Arg(
            "state",
            "str",
            default="present",
            choices=("present", "absent"),
            help="installed or not",
        ),
        Arg("update_cache", "bool", default=False, help="apt-get update before installing"),
    )

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[str]:
        bad = [n for n in params["name"] if not _NAME.fullmatch(n)]
        return [f"invalid package name {bad[0]!r}"] if bad else []

    def gather(self, conn: Connection, params: Mapping[str, Any], ctx: Context) -> PackageFacts:
        names: list[str] = list(params["name"])
        if conn.stat("/usr/bin/apt-get").exists:
            result = conn.run(
                ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", "--", *names]
            )
            return PackageFacts("apt", parse_dpkg_query(result))
        if conn.stat("/usr/bin/dnf").exists:
            result = conn.run(["rpm", "-q", "--qf", "%{NAME}\n", "--", *names])
            return PackageFacts("dnf", parse_rpm_query(result, names))
        return PackageFacts("", frozenset())

    def plan(self, params: Mapping[str, Any], facts: PackageFacts, ctx: Context) -> list[Change]:
        names: list[str] = list(params["name"])
        if not facts.manager:
            raise ModuleError("no supported package manager (apt-get or dnf) found", host=ctx.host)
        if params["state"] == "present":
            todo = [n for n in names if n not in facts.installed]
            if not todo:
                return []
            if facts.manager == "apt":
                steps: list[Change] = []
                if params["update_cache"]:
                    steps.append(RunCommand(("apt-get", "update", "-q")))
                steps.append(
                    RunCommand(
                        (
                            "env",
                            "DEBIAN_FRONTEND=noninteractive",
                            "apt-get",
                            "install",
                            "-y",
                            "-q",
                            "--no-install-recommends",
                            "--",
                            *todo,
                        )
                    )
                )
                return steps
            return [RunCommand(("dnf", "install", "-y", "-q", "--", *todo))]
        todo = [n for n in names if n in facts.installed]
        if not todo:
            return []
        if facts.manager == "apt":
            return [
                RunCommand(
                    (
                        "env",
                        "DEBIAN_FRONTEND=noninteractive",
                        "apt-get",
                        "remove",
                        "-y",
                        "-q",
                        "--",
                        *todo,
                    )
                )
            ]
        return [RunCommand(("dnf", "remove", "-y", "-q", "--", *todo))]
