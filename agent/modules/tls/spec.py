"""The arguments of the TLS step (``tls_origin``; its parts take subsets): the one spec that
plan validation, the module and ``origin-agent doc`` read."""

from __future__ import annotations

from agent.modules.base import Arg
from agent.modules.tls import txn
from agent.modules.tls.verify import REQUIRE

ARGS: tuple[Arg, ...] = (
    Arg("names", "list", elements="str", help="DNS names (default: the host var tls_names)"),
    Arg("site", "str", help="site name: file and directory names (default: first name)"),
    Arg("issuer", "dict", help="issuer config (default: the host var issuer)"),
    Arg(
        "key_type",
        "str",
        default="ec256",
        choices=("ec256", "ec384", "rsa2048", "rsa3072", "rsa4096"),
    ),
    Arg("validity_days", "int", default=90),
    Arg(
        "renew_before_days",
        "int",
        default=None,
        help="renew this many days before expiry (0: at expiry); default: the renewal "
        "policy (two thirds of the lifetime, or the CA's renewal window)",
    ),
    Arg("force", "bool", default=False),
    Arg("server", "str", default="auto", choices=("auto", "nginx", "apache")),
    Arg("server_paths", "dict", default=None),
    Arg("site_template", "str", default=None),
    Arg("listen_address", "str", default=None),
    Arg("https_port", "int", default=443),
    Arg("http_port", "int", default=80),
    Arg("profile", "str", default="intermediate", choices=("intermediate", "modern")),
    Arg("redirect_http", "bool", default=False),
    Arg("hsts", "bool", default=False),
    Arg("acme_webroot", "path", default="/var/www/acme"),
    Arg("document_root", "path", default="/var/www/html"),
    Arg(
        "upstream",
        "str",
        default=None,
        help="our own site proxies to this app URL (http[s]://HOST[:PORT][/PATH]) instead "
        "of serving document_root (default: the host var upstream)",
    ),
    Arg(
        "client_ca",
        "str",
        default=None,
        help="controller file: CA for authenticated origin pulls",
    ),
    Arg("verify", "bool", default=True),
    Arg("verify_address", "str", default=None),
    Arg(
        "verify_from",
        "str",
        default="auto",
        choices=("auto", "controller", "origin"),
        help="where the handshakes come from: the controller, the origin itself (openssl "
        "s_client in the same transaction), or auto: the origin when the controller cannot "
        "reach its HTTPS port",
    ),
    Arg("verify_timeout", "int", default=10),
    Arg("require_mode", "str", default="auto", choices=REQUIRE),
    Arg("pins", "list", elements="str", default=None),
    Arg("keep_versions", "int", default=3),
    Arg("revoke_replaced", "bool", default=False),
    Arg("cert_root", "path", default=txn.CERT_ROOT),
)
