"""``service``: a daemon started, stopped, reloaded or restarted.

The init system is detected on the host: systemd when ``/run/systemd/system`` exists
(``systemctl``), else the SysV script ``/etc/init.d/NAME``, else the server's own command for
nginx (``nginx -s ...``) and apache2 (``apachectl -k ...``). ``started``/``stopped`` change
something only when the service is not already so; ``reloaded`` and ``restarted`` always act
(a reload of a stopped service starts it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from agent.modules.base import Arg, Change, Context, Module, ModuleError, RunCommand
from agent.transport.base import Connection

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._-]*$")
STATES = ("started", "stopped", "reloaded", "restarted")

# The server's own commands when neither systemd nor an init script manages it.
_OWN: dict[str, dict[str, tuple[str, ...]]] = {
    "nginx": {
        "status": ("sh", "-c", 'test -s /run/nginx.pid && kill -0 "$(cat /run/nginx.pid)"'),
        "start": ("nginx",),
        "stop": ("nginx", "-s", "quit"),
        "reload": ("nginx", "-s", "reload"),
        "restart": ("sh", "-c", "nginx -s quit; nginx"),
    },
    "apache2": {
        "status": (
            "sh",
            "-c",
            'test -s /run/apache2/apache2.pid && kill -0 "$(cat /run/apache2/apache2.pid)"',
        ),
        "start": ("apachectl", "-k", "start"),
        "stop": ("apachectl", "-k", "graceful-stop"),
        "reload": ("apachectl", "-k", "graceful"),
        "restart": ("apachectl", "-k", "restart"),
    },
}


@dataclass(frozen=True)
class ServiceFacts:
    manager: str  # "systemd", "sysv", "own" or ""
    running: bool


def commands(manager: str, name: str) -> dict[str, tuple[str, ...]]:
    """argv for status/start/stop/reload/restart of ``name`` under ``manager``."""
    if manager == "systemd":
        return {
            "status": ("systemctl", "is-active", "--quiet", "--", name),
            "start": ("systemctl", "start", "--", name),
            "stop": ("systemctl", "stop", "--", name),
            "reload": ("systemctl", "reload", "--", name),
            "restart": ("systemctl", "restart", "--", name),
        }
    if manager == "sysv":
        script = f"/etc/init.d/{name}"
        return {verb: (script, verb) for verb in ("status", "start", "stop", "reload", "restart")}
    return _OWN.get(name, {})


class ServiceModule(Module):
    """Bring service ``name`` to ``state``."""

    name: ClassVar[str] = "service"
    example: ClassVar[str] = """\
- name: nginx running
  service:
    name: nginx
    state: started
"""
    args: ClassVar[tuple[Arg, ...]] = (
        Arg("name", "str", required=True, help="the service, e.g. nginx"),
        Arg("state", "str", required=True, choices=STATES, help="what it should be"),
    )

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[str]:
        if not _NAME.fullmatch(params["name"]):
            return [f"invalid service name {params['name']!r}"]
        return []

    def gather(self, conn: Connection, params: Mapping[str, Any], ctx: Context) -> ServiceFacts:
        name: str = params["name"]
        if conn.stat("/run/systemd/system").exists:
            manager = "systemd"
        elif conn.stat(f"/etc/init.d/{name}").exists:
            manager = "sysv"
        elif name in _OWN:
            manager = "own"
        else:
            return ServiceFacts("", False)
        status = commands(manager, name)["status"]
        return ServiceFacts(manager, conn.run(list(status), become=ctx.become).ok)

    def plan(self, params: Mapping[str, Any], facts: ServiceFacts, ctx: Context) -> list[Change]:
        name: str = params["name"]
        state: str = params["state"]
        if not facts.manager:
            raise ModuleError(
                f"service {name!r} not found (no systemd unit manager, no /etc/init.d/{name})",
                host=ctx.host,
            )
        argv = commands(facts.manager, name)
        if state == "started":
            return [] if facts.running else [RunCommand(argv["start"])]
        if state == "stopped":
            return [RunCommand(argv["stop"])] if facts.running else []
        if state == "reloaded":
            return [RunCommand(argv["reload" if facts.running else "start"])]
        return [RunCommand(argv["restart" if facts.running else "start"])]
