"""`origin-agent ca init|revoke`: a private origin CA in a local directory (the localca backend)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from agent.commands.argtypes import common_name, int_range, new_dir
from agent.errors import IssuerError, UsageError
from agent.pki.inspect import inspect_certificate
from agent.pki.issuers.localca import DEFAULT_CA_DAYS, DEFAULT_CA_NAME, LocalCAIssuer, init_ca
from agent.pki.keys import DEFAULT_KEY_TYPE, KEY_TYPES


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "ca",
        help="make and manage a private origin CA (issuer backend 'localca')",
        description=(
            "A private CA kept in a directory on this machine. Certificates it signs are valid "
            "for 'Full (strict)' only at an edge that trusts its root certificate."
        ),
    )
    csub = parser.add_subparsers(dest="ca_command", metavar="ACTION", required=True)
    init = csub.add_parser(
        "init",
        help="create a root CA (and an intermediate) in DIR",
        description=(
            "Create a root CA in DIR (created 0700; keys 0600). An existing CA is never "
            "overwritten. Use it with 'issuer: {backend: localca, dir: DIR}'."
        ),
    )
    init.add_argument("dir", type=new_dir, metavar="DIR", help="directory for the CA files")
    init.add_argument(
        "--intermediate",
        action="store_true",
        help="also make an intermediate that signs (root key may go offline)",
    )
    init.add_argument(
        "--key-type",
        default=DEFAULT_KEY_TYPE,
        choices=KEY_TYPES,
        help=f"CA key type (default {DEFAULT_KEY_TYPE})",
    )
    init.add_argument(
        "--name",
        type=common_name,
        default=DEFAULT_CA_NAME,
        help=f"CA common name (default {DEFAULT_CA_NAME!r})",
    )
    init.add_argument(
        "--days",
        type=int_range(1, 36500),
        default=DEFAULT_CA_DAYS,
        help=f"CA validity in days (default {DEFAULT_CA_DAYS})",
    )
    init.set_defaults(func=_init)
    revoke = csub.add_parser(
        "revoke",
        help="revoke a certificate the CA in DIR issued",
        description="Record a certificate as revoked in DIR/revoked.txt and rewrite DIR/crl.pem.",
    )
    revoke.add_argument("dir", type=Path, metavar="DIR", help="the CA directory")
    revoke.add_argument("cert", type=Path, metavar="CERT", help="PEM certificate to revoke")
    revoke.set_defaults(func=_revoke)


def _init(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        paths = init_ca(
            args.dir,
            intermediate=args.intermediate,
            key_type=args.key_type,
            name=args.name,
            days=args.days,
        )
    except OSError as err:
        raise UsageError(
            f"cannot create the CA: {err.strerror or err}", where=str(args.dir)
        ) from None
    root = inspect_certificate(paths.root_cert.read_bytes())
    out.write(f"created CA {args.name!r} ({args.key_type}) in {paths.dir}\n")
    out.write(f"root certificate (the edge must trust this): {paths.root_cert}\n")
    out.write(f"  expires {root.not_after:%Y-%m-%d}, sha256 {root.fingerprint_sha256}\n")
    out.write(f"root key: {paths.root_key} (0600)\n")
    if args.intermediate:
        out.write(
            f"intermediate: {paths.intermediate_cert}, key {paths.intermediate_key} (0600); "
            "the root key is not needed to issue and may be moved offline\n"
        )
    out.write(f"use it: issuer: {{backend: localca, dir: {paths.dir}}}\n")
    return 0


def _revoke(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        pem = args.cert.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise UsageError(f"cannot read {args.cert}: {err.strerror}") from err
    ca = LocalCAIssuer(args.dir)
    try:
        info = inspect_certificate(pem)
    except Exception as err:
        raise IssuerError(f"{args.cert} is not a PEM certificate", backend="localca") from err
    ca.revoke(pem)
    out.write(f"revoked serial {info.serial}; CRL: {ca.paths.crl}\n")
    return 0
