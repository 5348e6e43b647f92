"""``origin-agent promote``: set a Cloudflare zone to Full (strict) once every origin is ready.

The zone's origins are the inventory hosts whose ``cloudflare_zone`` (or ``zone_id``) var
names it. Each is verified live, as ``status`` does (a handshake per name, judged as the edge
would); the zone is switched only when every row is ready for Full (strict). Anything less
blocks the change and says which hosts block it and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from agent.errors import UsageError
from agent.inventory import Host
from agent.jobs.hostvars import rendered
from agent.jobs.order import natural_key
from agent.jobs.status import StatusRow

ZONE_VARS = ("cloudflare_zone", "zone_id")
TARGET = "strict"
# Modes at least as strict as Full (strict): leave them alone (origin_pull is Strict with
# authenticated origin pulls, a downgrade would weaken it).
AT_LEAST_STRICT = ("strict", "origin_pull")
EDGE_LABELS = {
    "off": "Off",
    "flexible": "Flexible",
    "full": "Full",
    "strict": "Full (strict)",
    "origin_pull": "Strict (origin pull)",
}

Action = Literal["already", "promote", "blocked"]


def zone_of(host: Host) -> str:
    """The zone id a host belongs to (``cloudflare_zone`` first, then ``zone_id``), or ``""``."""
    for var in ZONE_VARS:
        value = host.vars.get(var)
        if value not in (None, ""):
            return str(value)
    return ""


def zone_hosts(hosts: Sequence[Host], zone_id: str) -> list[Host]:
    """The origins of ``zone_id`` among ``hosts``, their variables rendered as a plan renders
    them (``status`` then judges them by the same default trust as ``status`` itself).

    Raises:
        UsageError: none of them names that zone (the message lists the zones seen).
        PlanError: a host variable's template fails.
    """
    hosts = [rendered(h) for h in hosts]
    chosen = [h for h in hosts if zone_of(h) == zone_id]
    if not chosen:
        seen = sorted({z for z in map(zone_of, hosts) if z})
        hint = (
            f"zones in the inventory: {', '.join(seen)}"
            if seen
            else "set the host var cloudflare_zone (or zone_id) to the zone id on its origins"
        )
        raise UsageError(
            f"no host in the inventory belongs to zone {zone_id}", where="promote", hint=hint
        )
    return chosen


@dataclass(frozen=True)
class Blocker:
    """One host and name that is not ready for Full (strict)."""

    host: str
    name: str
    mode_label: str
    reasons: tuple[str, ...]

    def line(self) -> str:
        why = "; ".join(self.reasons) or "not ready"
        return f"{self.host}: {self.name}: ready for {self.mode_label} only: {why}"


@dataclass(frozen=True)
class Decision:
    """What promote does: ``already`` strict, ``promote`` (or would, with --check), ``blocked``."""

    zone_id: str
    current: str
    action: Action
    hosts: tuple[str, ...] = ()
    blockers: tuple[Blocker, ...] = ()

    def summary(self, *, check: bool = False) -> str:
        """Pure: the lines to print (the first one says what happened)."""
        now = EDGE_LABELS.get(self.current, self.current or "unknown")
        count = f"{len(self.hosts)} origin{'s' if len(self.hosts) != 1 else ''}"
        if self.action == "already":
            return f"zone {self.zone_id}: already {now}; nothing to do\n"
        if self.action == "blocked":
            lines = [
                f"zone {self.zone_id}: stays {now}: {len(self.blockers)} of the zone's "
                f"names not ready for Full (strict) ({count} checked):"
            ]
            lines += [f"  {b.line()}" for b in self.blockers]
            return "\n".join(lines) + "\n"
        verb = "would set" if check else "set"
        tail = " (--check: nothing changed)" if check else ""
        return (
            f"zone {self.zone_id}: {count} ready for Full (strict); "
            f"{verb} {now} -> Full (strict){tail}\n"
        )


def decide(zone_id: str, current: str, rows: Sequence[StatusRow] | None) -> Decision:
    """Pure: the decision from the zone's mode and the status rows of its origins
    (``rows`` may be ``None`` when the zone is already strict and nothing was probed)."""
    if current in AT_LEAST_STRICT:
        return Decision(zone_id, current, "already")
    rows = rows or ()
    hosts = tuple(sorted({r.host for r in rows}, key=natural_key))
    blockers = tuple(
        Blocker(r.host, r.name, r.mode_label, r.reasons) for r in rows if r.mode != TARGET
    )
    if blockers or not rows:
        return Decision(zone_id, current, "blocked", hosts, blockers)
    return Decision(zone_id, current, "promote", hosts)
