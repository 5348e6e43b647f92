"""Loading inventory sources into an :class:`Inventory`.

A source (``-i``) is one of:

- a YAML file (``.yml``, ``.yaml``, ``.json``), see :mod:`agent.inventory.yamlfile`;
- an INI file (``.ini`` or any other name whose text is not a YAML mapping), see
  :mod:`agent.inventory.inifile`;
- a directory: each file in it (sorted; hidden, ``~``, ``.bak``, ``.md``... skipped);
- a comma-separated host list such as ``web1,web2:2222,`` (hosts land in ``ungrouped``).

Several sources merge into one inventory. ``group_vars/`` and ``host_vars/`` beside each file
source (inside a directory source) are read; precedence is documented in
:mod:`agent.inventory.vars`. Every problem in every file is collected and reported together,
one line each with file:line:col.
"""

from __future__ import annotations

import os
import re

from yaml.nodes import MappingNode

from agent.errors import SourcePos
from agent.inventory.builder import Builder
from agent.inventory.inifile import parse_ini
from agent.inventory.inventory import Inventory
from agent.inventory.model import Group, Host
from agent.inventory.problems import Problems
from agent.inventory.ranges import RangeError, split_port
from agent.inventory.vars import (
    group_variables,
    host_variables,
    member_groups,
    sorted_groups,
)
from agent.inventory.varsfiles import VarsFiles, read_text, warn_unmatched
from agent.inventory.yamlfile import parse_yaml
from agent.inventory.yamlload import compose

YAML_EXTENSIONS = (".yml", ".yaml", ".json")
INI_EXTENSIONS = (".ini",)
IGNORED_EXTENSIONS = frozenset(".pyc .pyo .swp .bak .rpm .md .txt .rst .orig .cfg .retry".split())
MAX_DIR_FILES = 1000
_YAML_START = re.compile(r"^(---|[^\[\s=#;][^=]*:(\s.*)?)$")


def load(sources: list[str]) -> Inventory:
    """Load and merge inventory sources (files, directories, ``a,b,`` host lists).

    Raises:
        InventoryError: any problem in any source or variables file; when there are several,
            ``str()`` has one line per problem (``file:line:col: what``).
    """
    problems = Problems()
    if not sources:
        problems.add(None, "no inventory given", hint="pass -i FILE")
        problems.raise_if_any()
    builder = Builder(problems)
    basedirs: list[str] = []
    for source in sources:
        if "," in source and not os.path.exists(source):
            _host_list(source, builder, problems)
        elif os.path.isdir(source):
            found = _dir_sources(source, problems)
            if not found:
                problems.add(SourcePos(source), "no inventory file in this directory")
            for path in found:
                _parse_file(path, builder, problems)
            basedirs.append(os.path.realpath(source))
        elif os.path.exists(source):
            _parse_file(source, builder, problems)
            basedirs.append(os.path.dirname(os.path.realpath(source)))
        else:
            problems.add(SourcePos(source), "inventory source not found")
    builder.reconcile()
    inventory = _resolve(builder, basedirs, problems, tuple(sources))
    for basedir in dict.fromkeys(basedirs):
        warn_unmatched(basedir, "group_vars", builder.groups)
        warn_unmatched(basedir, "host_vars", builder.hosts)
    problems.raise_if_any()
    return inventory


def _host_list(source: str, builder: Builder, problems: Problems) -> None:
    for entry in source.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            name, port = split_port(entry)
        except RangeError as err:
            problems.add(SourcePos(source), str(err))
            continue
        builder.add_host(name, "ungrouped", port, SourcePos(source))


def _dir_sources(folder: str, problems: Problems) -> list[str]:
    try:
        entries = sorted(os.listdir(folder))
    except OSError as err:
        problems.add(SourcePos(folder), f"cannot list: {err.strerror or err}")
        return []
    found = []
    for entry in entries:
        full = os.path.join(folder, entry)
        if entry.startswith(".") or entry.endswith("~") or not os.path.isfile(full):
            continue
        if os.path.splitext(entry)[1] in IGNORED_EXTENSIONS:
            continue
        found.append(full)
    return found[:MAX_DIR_FILES]


def _looks_like_yaml(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", ";")):
            return bool(_YAML_START.match(stripped))
    return False


def _has_content(text: str) -> bool:
    return any(
        line.strip() and not line.strip().startswith(("#", ";")) for line in text.splitlines()
    )


def _parse_file(path: str, builder: Builder, problems: Problems) -> None:
    text = read_text(path, problems)
    if text is None:
        return
    ext = os.path.splitext(path)[1].lower()
    if not _has_content(text):
        # an empty YAML file says so in its own words; an INI one or /dev/null would load as
        # an inventory of no host, and a run on it would do nothing and exit 0
        if ext not in YAML_EXTENSIONS:
            problems.add(SourcePos(path), "empty inventory (no host, no group)")
            return
    if ext in INI_EXTENSIONS:
        parse_ini(text, path, builder, problems)
        return
    if ext in YAML_EXTENSIONS:
        before = len(problems.items) + problems.dropped
        root = compose(text, path, problems)
        if root is not None or len(problems.items) + problems.dropped == before:
            parse_yaml(root, path, builder, problems)
        return
    trial = Problems()
    root = compose(text, path, trial)
    if isinstance(root, MappingNode) or (trial and _looks_like_yaml(text)):
        for item in trial.items:  # duplicate keys, or the syntax error of a YAML-looking file
            problems.add(item.where, item.message, item.hint)
        if root is not None:
            parse_yaml(root, path, builder, problems)
    else:
        parse_ini(text, path, builder, problems)


def _resolve(
    builder: Builder, basedirs: list[str], problems: Problems, sources: tuple[str, ...]
) -> Inventory:
    files = VarsFiles(problems)
    depths = builder.depths()
    hosts: dict[str, Host] = {}
    for name in builder.hosts:
        groups = sorted_groups(builder, member_groups(builder, name), depths)
        hosts[name] = Host(
            name=name,
            vars=host_variables(builder, name, groups, basedirs, files),
            groups=["all", *groups],
        )
    groups_out: dict[str, Group] = {}
    for name, data in builder.groups.items():
        groups_out[name] = Group(
            name=name,
            hosts=list(data.hosts),
            children=list(data.children),
            vars=group_variables(builder, name, basedirs, files),
        )
    return Inventory(hosts=hosts, groups=groups_out, sources=sources)
