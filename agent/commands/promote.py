"""`origin-agent promote --zone ZONE_ID`: Full (strict) at the Cloudflare edge, when safe."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from agent.commands import options
from agent.errors import IssuerError
from agent.jobs import promote, status
from agent.pki.issuers.cloudflare import (
    BACKEND,
    DEFAULT_BASE_URL,
    CloudflareClient,
    CloudflareConfig,
)

EXIT_BLOCKED = 4  # as status's thresholds


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "promote",
        help="set a Cloudflare zone to Full (strict) once every origin of it verifies as ready",
        description=(
            "Read the zone's SSL/TLS mode through Cloudflare's API. The zone's origins are the "
            "inventory hosts whose var cloudflare_zone (or zone_id) is ZONE_ID; each is verified "
            "live as 'status' does. Only when every one is ready for Full (strict) is the zone "
            "set to strict; otherwise the blocking hosts and their reasons are listed and "
            "nothing changes. The API token is read from --token-env (default "
            "CLOUDFLARE_API_TOKEN) or --token-file and never printed."
        ),
        epilog=f"Exit codes: 0 promoted, would promote (--check) or already strict; 1 API or "
        f"input error; 2 usage error; {EXIT_BLOCKED} some origin is not ready (nothing changed).",
    )
    options.add_inventory(parser, required=False)
    parser.add_argument("--zone", required=True, metavar="ZONE_ID", help="Cloudflare zone id")
    options.add_check(parser)
    parser.add_argument(
        "--api-base",
        default=DEFAULT_BASE_URL,
        metavar="URL",
        help=f"API root (default {DEFAULT_BASE_URL})",
    )
    token = parser.add_mutually_exclusive_group()
    token.add_argument(
        "--token-env",
        default="CLOUDFLARE_API_TOKEN",
        metavar="VAR",
        help="environment variable holding the API token (Zone > Zone Settings > Edit)",
    )
    token.add_argument("--token-file", metavar="FILE", help="file holding the API token (0600)")
    parser.add_argument(
        "--ca-bundle", metavar="FILE", help="TLS trust for the API (default: system)"
    )
    options.add_trust(parser)
    options.add_forks(parser)
    options.add_timeout(parser)
    options.add_state_dir(parser)
    parser.set_defaults(func=run)


def client_from_args(args: argparse.Namespace) -> CloudflareClient:
    """The API client for ``--api-base`` with the token from ``--token-file`` or ``--token-env``.

    Raises:
        IssuerError: no token, unreadable token file, bad URL or CA bundle.
    """
    config: dict[str, Any] = {"base_url": args.api_base}
    if args.token_file:
        config["token_file"] = args.token_file
    else:
        config["token_env"] = args.token_env
    if args.ca_bundle:
        config["ca_bundle"] = args.ca_bundle
    parsed = CloudflareConfig.parse(config)
    return CloudflareClient(
        parsed.base_url,
        credential=parsed.credential,
        service_key=parsed.service_key,
        ca_bundle=parsed.ca_bundle,
        timeout=parsed.timeout,
        retry=parsed.retry,
    )


def run(args: argparse.Namespace) -> int:
    options.require_inventory(args)
    hosts = promote.zone_hosts(options.load_inventory(args.inventory).select("all"), args.zone)
    client = client_from_args(args)
    current = client.get_ssl_mode(args.zone)
    if current in promote.AT_LEAST_STRICT:
        sys.stdout.write(promote.decide(args.zone, current, None).summary())
        return 0
    options.configure_services(args.inventory, args.state_dir)
    extra = options.trust_text(args.trust)
    rows = status.collect(
        hosts, now=datetime.now(UTC), extra_trust=extra, forks=args.forks, timeout=args.timeout
    )
    decision = promote.decide(args.zone, current, rows)
    if decision.action == "blocked":
        sys.stdout.write(decision.summary())
        return EXIT_BLOCKED
    if not args.check:
        now = client.set_ssl_mode(args.zone, promote.TARGET)
        if now != promote.TARGET:
            raise IssuerError(
                f"set SSL mode: zone {args.zone} reports {now!r} after the change", backend=BACKEND
            )
    sys.stdout.write(decision.summary(check=args.check))
    return 0
