"""`origin-agent inventory -i FILE --list | --graph [GROUP] | --host NAME`.

Shows the inventory as loaded, in ``ansible-inventory``'s output formats, so an inventory
can be checked (and compared with Ansible) before anything runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agent.commands import options
from agent.errors import UsageError
from agent.inventory import export


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "inventory",
        help="show the inventory as loaded (ansible-inventory compatible output)",
        description=(
            "Load YAML/INI inventories (with group_vars/ and host_vars/) and print them the "
            "way ansible-inventory does: --list (JSON), --graph, or --host NAME (variables)."
        ),
    )
    options.add_inventory(parser, required=False)
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
    options.add_limit(parser, help="only hosts matching PATTERN (--list)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and not args.list:
        # --graph and --host show what the inventory holds; a --limit they ignored silently
        # would look as if it had been applied
        raise UsageError("--limit works with --list only (not with --graph or --host)")
    inventory = options.load_inventory(args.inventory)
    if args.list:
        text = export.list_json(inventory, args.limit)
    elif args.graph is not None:
        text = export.graph(inventory, args.graph)
    else:
        text = export.dumps(export.host_vars(inventory, args.host))
    sys.stdout.write(text + "\n")
    return 0
