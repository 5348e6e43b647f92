"""`origin-agent bootstrap HOST...`: fresh origins to HTTPS ready for Full (strict)."""

from __future__ import annotations

import argparse
from typing import Any

from agent.commands import options
from agent.commands.run import EPILOG, run_bundled


def register(sub: Any) -> None:
    boot = sub.add_parser(
        "bootstrap",
        help="bring fresh origins to HTTPS ready for Full (strict) (plans/bootstrap.yml)",
        description=(
            "For each HOST: install the web server if missing, make the ACME webroot, then key, "
            "certificate from the host's issuer, TLS site, config test, graceful reload and "
            "verification. Idempotent: a second run changes nothing."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    boot.add_argument("hosts", nargs="*", metavar="HOST", help="hosts or patterns (default all)")
    options.add_plan_run_options(boot)
    boot.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_bundled(args, "bootstrap", ":".join(args.hosts) or "all", {})
