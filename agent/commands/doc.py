"""`origin-agent doc [TOPIC]`: the reference from the code (modules, issuers, variables, exit
codes, files on an origin), printed, or written to a directory as Markdown."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agent.errors import UsageError

DESCRIPTION = """\
Print the reference, rendered from the specs the code validates with: with no TOPIC, the
modules and issuers; `doc MODULE` every argument of a module (type, default, choices, what it
does) and an example task; `doc ISSUER` the keys of its `issuer:` mapping; `doc vars` the
inventory variables read; `doc exit-codes`; `doc files` what is written on an origin.
`--write DIR` writes the whole reference as Markdown (the checked-in docs/ is made this way).
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "doc",
        help="the reference: modules, issuers, variables, exit codes, files on an origin",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "topic", nargs="?", metavar="TOPIC", help="MODULE, ISSUER, vars, exit-codes or files"
    )
    parser.add_argument(
        "--write", metavar="DIR", help="write the reference as Markdown files into DIR"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent.jobs import docs

    if args.write:
        if args.topic:
            raise UsageError("--write writes every topic: give no TOPIC with it")
        for path in docs.write(Path(args.write)):
            sys.stdout.write(f"wrote {path}\n")
        return 0
    sys.stdout.write(docs.topic(args.topic) if args.topic else docs.index())
    return 0
