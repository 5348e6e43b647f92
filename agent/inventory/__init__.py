"""Inventory: hosts, groups and variables, in Ansible's YAML and INI formats.

    inventory = load(["inventories/prod.yml"])
    for host in inventory.select("web:&eu", limit="web0*"):
        spec = connection_spec(host)

Formats: :mod:`agent.inventory.yamlfile`, :mod:`agent.inventory.inifile`; sources and
``group_vars/``/``host_vars/``: :mod:`agent.inventory.loader`; variable precedence (all <
parent group < child group < host < host_vars): :mod:`agent.inventory.vars`; patterns:
:mod:`agent.inventory.patterns`; connection variables: :mod:`agent.inventory.connection`.
"""

from agent.inventory.connection import connection_spec, with_overrides
from agent.inventory.inventory import Inventory
from agent.inventory.loader import load
from agent.inventory.model import ConnectionSpec, Group, Host
from agent.inventory.vars import merge_layers

__all__ = [
    "with_overrides",
    "ConnectionSpec",
    "Group",
    "Host",
    "Inventory",
    "connection_spec",
    "load",
    "merge_layers",
]
