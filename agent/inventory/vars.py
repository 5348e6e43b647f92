"""Variable precedence: how a host's variables are merged.

From lowest to highest (a later layer replaces a whole value of the same name; dictionaries are
not deep-merged, as with Ansible's default ``hash_behaviour = replace``):

1. ``all`` group variables written in the inventory file(s);
2. every other group the host belongs to (directly or through a child group), variables
   written in the inventory file(s), parents before children: groups are ordered by depth
   (distance from ``all``), then ``ansible_group_priority`` (default 1), then name;
3. ``group_vars/all`` beside each inventory source, in ``-i`` order;
4. ``group_vars/GROUP`` beside each inventory source, in ``-i`` order, groups ordered as in 2;
5. host variables written in the inventory file(s) (the last source wins);
6. ``host_vars/HOST`` beside each inventory source, in ``-i`` order.

So: all < parent group < child group < host < host_vars, where for groups a ``group_vars/``
file beats what the inventory file itself says. This is exactly Ansible's order, so
``origin-agent inventory --list`` prints what ``ansible-inventory --list`` prints.

Layers above the inventory (play ``vars``, then ``-e`` extra vars) are applied later by the
plan layer with :func:`merge_layers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.inventory.builder import Builder
from agent.inventory.varsfiles import VarsFiles


def merge_layers(base: Mapping[str, Any], *layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge variable layers, lowest first: ``merge_layers(host.vars, play_vars, extra_vars)``.

    A name in a later layer replaces the earlier value entirely (no deep merge). The inputs
    are not modified.
    """
    merged = dict(base)
    for layer in layers:
        merged.update(layer)
    return merged


def sorted_groups(builder: Builder, names: list[str], depths: dict[str, int]) -> list[str]:
    """Groups in precedence order: depth, then ``ansible_group_priority``, then name."""
    return sorted(names, key=lambda g: (depths.get(g, 0), builder.groups[g].priority, g))


def member_groups(builder: Builder, host: str) -> list[str]:
    """Every group ``host`` is in (direct or inherited), except ``all``, unordered."""
    member: set[str] = set()
    for g in builder.hosts[host].groups:
        member.add(g)
        member.update(builder.ancestors(g))
    member.discard("all")
    return list(member)


def host_variables(
    builder: Builder, host: str, groups: list[str], basedirs: list[str], files: VarsFiles
) -> dict[str, Any]:
    """The merged variables of ``host`` (see the module docstring); ``groups`` sorted."""
    merged: dict[str, Any] = dict(builder.groups["all"].vars)
    for g in groups:
        merged.update(builder.groups[g].vars)
    for basedir in basedirs:
        merged.update(files.lookup(basedir, "group_vars", "all"))
    for basedir in basedirs:
        for g in groups:
            merged.update(files.lookup(basedir, "group_vars", g))
    merged.update(builder.hosts[host].vars)
    for basedir in basedirs:
        merged.update(files.lookup(basedir, "host_vars", host))
    return merged


def group_variables(
    builder: Builder, group: str, basedirs: list[str], files: VarsFiles
) -> dict[str, Any]:
    """A group's own variables: inventory file, then ``group_vars/GROUP`` (no inheritance)."""
    merged = dict(builder.groups[group].vars)
    for basedir in basedirs:
        merged.update(files.lookup(basedir, "group_vars", group))
    return merged
