"""`origin-agent status`: the fleet as the edge sees it. Reads, never changes."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.commands import options
from agent.errors import UsageError
from agent.jobs import followup, status, status_render
from agent.jobs.targets import check_output_file, write_output_file

EXIT_THRESHOLD = 4


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "status",
        help="fleet report: served certificate, expiry, issuer, pin, SSL mode each origin is ready for",
        description=(
            "Handshake with every origin (SNI for each of its tls_names, at its listen_address or "
            "address) and judge what it serves the way the edge would: Flexible (no TLS), Full "
            "(any certificate), Full (pinned) (self-signed but the pin matches tls_pins), Full "
            "(strict) (valid, names match, chains to a root the edge trusts: a public CA as "
            "certifi ships them, Cloudflare's Origin CA, the issuer's root or trust:, --trust). "
            "Reads the local state to tell certificates this tool issued. Changes nothing. Rows are sorted "
            "most urgent first."
        ),
        epilog=f"Exit codes: 0 fine, 1 bad input, {EXIT_THRESHOLD} a --fail-within or --require-mode "
        "threshold was crossed (for cron and monitors).",
    )
    options.add_inventory(parser, required=False)
    parser.add_argument("pattern", nargs="?", default="all", help="hosts (pattern), default all")
    options.add_limit(parser, help="further limit the hosts")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON document with every row")
    parser.add_argument(
        "--html", metavar="FILE", type=Path, help="also write a one-page HTML report"
    )
    options.add_fail_within(parser)
    parser.add_argument(
        "--require-mode",
        choices=("flexible", "full", "full_pinned", "strict"),
        help=f"exit {EXIT_THRESHOLD} if any origin is not ready for this mode",
    )
    options.add_trust(parser)
    options.add_forks(parser)
    options.add_timeout(parser)
    options.add_state_dir(parser)
    options.add_metrics_and_alerts(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options.require_inventory(args)
    check_output_file(args.html, "--html")
    inventory = options.load_inventory(args.inventory)
    options.configure_services(args.inventory, args.state_dir)
    hosts = inventory.select(args.pattern, limit=args.limit)
    if not hosts:
        raise UsageError(f"no hosts match {args.pattern!r}", where="status")
    followup.check_urls(args)
    extra = options.trust_text(args.trust)
    now = datetime.now(UTC)
    rows = status.collect(hosts, now=now, extra_trust=extra, forks=args.forks, timeout=args.timeout)
    if args.json:
        sys.stdout.write(status_render.to_json(rows, now))
    else:
        sys.stdout.write(status_render.table(rows))
    if args.html:
        page = status_render.to_html(rows, now, require_mode=args.require_mode or "strict")
        write_output_file(args.html, page, "--html")
        if not args.json:
            print(f"report written to {args.html}")
    followup.after_status(args, hosts, rows, now)
    problems = status.failing(rows, fail_within=args.fail_within, require_mode=args.require_mode)
    for line in problems:
        sys.stderr.write(f"origin-agent: {line}\n")
    return EXIT_THRESHOLD if problems else 0
