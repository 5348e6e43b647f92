"""The arguments of the TLS step (``tls_origin``; its parts take subsets): the one spec that
plan validation, the module and ``origin-agent doc`` read."""

from __future__ import annotations

from agent.modules.base import Arg
from agent.modules.tls import txn
from agent.modules.tls.verify import REQUIRE

SERVERS = ("auto", "nginx", "apache")
KEY_TYPES = ("ec256", "ec384", "rsa2048", "rsa3072", "rsa4096")

ARGS: tuple[Arg, ...] = (
    Arg("names", "list", elements="str", help="DNS names (default: the host var tls_names)"),
    Arg("site", "str", help="site name: file and directory names (default: first name)"),
    Arg("issuer", "dict", help="issuer config (default: the host var issuer)"),
    Arg("key_type", "str", default="ec256", choices=KEY_TYPES, help="the site key's type"),
    Arg(
        "validity_days",
        "int",
        default=None,
        help="validity asked of the CA, in days (default: the backend's own: 90 days for "
        "selfsigned and localca, 5475 for Cloudflare's Origin CA, the CA's for ACME)",
    ),
    Arg(
        "renew_before_days",
        "int",
        default=None,
        help="renew this many days before expiry (0: at expiry); default: the renewal "
        "policy (two thirds of the lifetime, or the CA's renewal window)",
    ),
    Arg("force", "bool", default=False, help="renew even when the certificate is not due"),
    Arg(
        "server",
        "str",
        default="auto",
        choices=SERVERS,
        help="web server (auto: the host var web_server, else the one found on the host)",
    ),
    Arg(
        "server_paths",
        "dict",
        default=None,
        help="the server's config layout, e.g. {layout: rhel} (default: Debian's)",
    ),
    Arg("site_template", "str", default=None, help="controller jinja2 file replacing our site"),
    Arg(
        "listen_address",
        "str",
        default=None,
        help="address the site binds (default: the host var listen_address)",
    ),
    Arg("https_port", "int", default=443, help="port of the TLS site"),
    Arg("http_port", "int", default=80, help="port of the plain HTTP site"),
    Arg(
        "profile",
        "str",
        default="intermediate",
        choices=("intermediate", "modern"),
        help="TLS protocols and ciphers offered",
    ),
    Arg("redirect_http", "bool", default=False, help="redirect plain HTTP to HTTPS"),
    Arg("hsts", "bool", default=False, help="send Strict-Transport-Security"),
    Arg(
        "acme_webroot",
        "path",
        default="/var/www/acme",
        help="where /.well-known/acme-challenge/ is served from",
    ),
    Arg("document_root", "path", default="/var/www/html", help="what our own site serves"),
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
    Arg("verify", "bool", default=True, help="verify with TLS handshakes after the reload"),
    Arg(
        "verify_address",
        "str",
        default=None,
        help="address the handshakes go to (default: the SSH address, ansible_host, host, "
        "listen_address, the inventory name)",
    ),
    Arg(
        "verify_from",
        "str",
        default="auto",
        choices=("auto", "controller", "origin"),
        help="where the handshakes come from: the controller, the origin itself (openssl "
        "s_client in the same transaction), or auto: the origin when the controller cannot "
        "reach its HTTPS port",
    ),
    Arg("verify_timeout", "int", default=10, help="seconds the verification may take"),
    Arg(
        "require_mode",
        "str",
        default="auto",
        choices=REQUIRE,
        help="lowest SSL mode accepted, else roll back (auto: full_pinned with pins and no "
        "trusted CA, strict when the edge trusts the issuer's CA, else full)",
    ),
    Arg("pins", "list", elements="str", default=None, help="SPKI pins the key must match"),
    Arg("keep_versions", "int", default=3, help="certificate versions kept on the origin"),
    Arg(
        "revoke_replaced",
        "bool",
        default=False,
        help="revoke the replaced certificate where the CA can",
    ),
    Arg("cert_root", "path", default=txn.CERT_ROOT, help="directory of the certificate versions"),
)
