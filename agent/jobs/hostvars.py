"""Host variables as a plan would see them, for the jobs that read the inventory without one
(``status``, ``pins``, ``promote``).

A value such as ``tls_names: ["{{ inventory_hostname }}"]`` is a template: a plan renders it
per host (with ``inventory_hostname`` and ``group_names`` set, variables referring to other
variables); these jobs must too, or they probe and judge the literal text.
"""

from __future__ import annotations

from dataclasses import replace

from agent.inventory import Host
from agent.plan.vars import Scope

JOB_VARS = (
    "tls_names",
    "tls_pins",
    "issuer",
    "listen_address",
    "https_port",
    "http_port",
    "key_type",
    "cloudflare_zone",
    "zone_id",
    "renew_before_days",
)
"""The variables ``status``, ``pins`` and ``promote`` read (others are left as they are: they
may refer to what only a plan defines)."""


def host_scope(host: Host) -> Scope:
    """The host's inventory variables plus ``inventory_hostname`` and ``group_names``, as
    :func:`agent.plan.render.scope_for` layers them for a play without vars."""
    magic = {
        "inventory_hostname": host.name,
        "group_names": sorted(g for g in host.groups if g not in ("all", "ungrouped")),
    }
    return Scope(host.name, [dict(host.vars), magic])


def rendered(host: Host, names: tuple[str, ...] = JOB_VARS) -> Host:
    """A copy of ``host`` whose variables ``names`` are rendered.

    Raises:
        PlanError: a template fails (undefined variable, syntax), naming the host.
    """
    scope = host_scope(host)
    values = dict(host.vars)
    for name in names:
        if name in values:
            values[name] = scope.resolve(name, used_at=f"{host.name}: {name}")
    return replace(host, vars=values)
