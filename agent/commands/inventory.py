"""`origin-agent inventory -i FILE --list | --graph [GROUP] | --host NAME`.

Shows the inventory as loaded, in ``ansible-inventory``'s output formats, so an inventory
can be checked (and compared with Ansible) before anything runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agent.inventory import Inventory, export, load


def add_inventory_args(parser: argparse.ArgumentParser) -> None:
    """Add ``-i/--inventory`` (repeatable) to a command's parser."""
    parser.add_argument(
        "-i",
        "--inventory",
        action="append",
        default=[],
        metavar="SOURCE",
        dest="inventory",
        help="inventory file (YAML or INI), directory, or 'host1,host2,' list; repeatable",
    )


def configure_services(args: argparse.Namespace) -> None:
    """Point the run-wide services at the state store (``--state-dir``) and resolve relative
    paths in issuer configs (a CA dir, a token file) from the first inventory's directory."""
    import os
    from pathlib import Path

    from agent.modules.tls import services

    first = next((s for s in args.inventory if os.path.exists(s)), None)
    base = "."
    if first is not None:
        base = str(Path(first).resolve().parent if os.path.isfile(first) else Path(first).resolve())
    services.configure(state_dir=getattr(args, "state_dir", None), base_dir=base)


def load_from_args(args: argparse.Namespace) -> Inventory:
    """The inventory named by ``-i`` options.

    Raises:
        InventoryError: see :func:`agent.inventory.load`.
    """
    return load(list(args.inventory))


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "inventory",
        help="show the inventory as loaded (ansible-inventory compatible output)",
        description=(
            "Load YAML/INI inventories (with group_vars/ and host_vars/) and print them the "
            "way ansible-inventory does: --list (JSON), --graph, or --host NAME (variables)."
        ),
    )
    add_inventory_args(parser)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--list", action="store_true", help="every group and host variable as JSON")
    action.add_argument(
        "--graph",
        nargs="?",
        const="all",
        default=None,
        metavar="GROUP",
        help="the group tree (from GROUP, default all)",
    )
    action.add_argument("--host", metavar="NAME", help="one host's merged variables as JSON")
    parser.add_argument(
        "-l", "--limit", metavar="PATTERN", help="only hosts matching PATTERN (--list)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    inventory = load_from_args(args)
    if args.list:
        text = export.list_json(inventory, args.limit)
    elif args.graph is not None:
        text = export.graph(inventory, args.graph)
    else:
        text = export.dumps(export.host_vars(inventory, args.host))
    sys.stdout.write(text + "\n")
    return 0
