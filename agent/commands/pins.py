"""`origin-agent pins`: current and next SPKI pins per origin; `--make-next` pre-makes keys."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agent.commands import options
from agent.errors import UsageError
from agent.jobs import pins


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "pins",
        help="current and next SPKI pins per origin, so an edge can pin before a rotation",
        description=(
            "For every host and certificate name: the pin-sha256 of the key it serves now (TLS "
            "handshake, no SSH) and of its pre-made next key (NAME/next/pubkey.pem under "
            "/etc/ssl/origin-agent, read over SSH). With --make-next, hosts without a next key "
            "get one (made here, key type from the host var key_type, default ec256; written "
            "0600). 'rotate' issues the next certificate for that key and makes a new next key, "
            "so an edge that pins current + next never sees an unpinned key."
        ),
        epilog="Exit codes: 0 fine, 1 a next key could not be read or written, 2 usage error, "
        "3 some hosts unreachable over SSH.",
    )
    options.add_inventory(parser, required=False)
    parser.add_argument("pattern", nargs="?", default="all", help="hosts (pattern), default all")
    options.add_limit(parser, help="further limit the hosts")
    parser.add_argument(
        "--make-next", action="store_true", help="create a next key on every host that has none"
    )
    parser.add_argument("--json", action="store_true", help="one JSON document with every row")
    options.add_forks(parser)
    options.add_timeout(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options.require_inventory(args)
    hosts = options.load_inventory(args.inventory).select(args.pattern, limit=args.limit)
    if not hosts:
        raise UsageError(f"no hosts match {args.pattern!r}", where="pins")
    rows = pins.collect(hosts, make=args.make_next, forks=args.forks, timeout=args.timeout)
    sys.stdout.write(pins.to_json(rows) if args.json else pins.table(rows))
    for row in rows:
        if row.next_error:
            sys.stderr.write(f"origin-agent: {row.host}: next key: {row.next_error}\n")
    return pins.exit_code(rows)
