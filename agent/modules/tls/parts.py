"""The TLS step in parts, for plans that want them separately: ``certificate``, ``tls_site``,
``reload`` and ``verify``.

``certificate`` and ``tls_site`` are the ``tls_origin`` transaction with part of the work: each
stages its files, runs the config test and undoes itself if the test fails, but does not
reload; notify a ``reload`` handler, so a host whose tasks changed several things is reloaded
once, after its tasks (the runner runs each notified handler once per host). ``verify`` looks
from outside and changes nothing. A failure after the reload is not rolled back by these parts:
use ``tls_origin`` for the all-or-nothing step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from agent.errors import VerifyError
from agent.modules.base import Arg, Change, Context, Module, ModuleError, ModuleResult, RunCommand
from agent.modules.tls import services
from agent.modules.tls.decide import target_address
from agent.modules.tls.origin import TlsOriginModule
from agent.modules.tls.spec import ARGS
from agent.modules.tls.verify import REQUIRE, verify_site, wall_clock
from agent.pki.modes import required_mode
from agent.servers.base import adapter_for, detect_argv, parse_detect
from agent.transport.base import Connection

_CERT_ONLY = {
    "site_template",
    "profile",
    "redirect_http",
    "hsts",
    "document_root",
    "upstream",
    "client_ca",
    "verify",
    "verify_address",
    "verify_from",
    "verify_timeout",
    "require_mode",
    "pins",
    "http_port",
}
_SITE_ONLY = {
    "issuer",
    "key_type",
    "validity_days",
    "renew_before_days",
    "force",
    "keep_versions",
    "revoke_replaced",
    "verify",
    "verify_address",
    "verify_from",
    "verify_timeout",
    "require_mode",
    "pins",
}


class CertificateModule(TlsOriginModule):
    """Key + CSR + issue + stage, renewed only when needed; the site is left alone."""

    name: ClassVar[str] = "certificate"
    example: ClassVar[str] = """\
- name: certificate staged and switched
  certificate:
    issuer: {backend: localca, dir: ./ca}
  notify: reload web server
"""
    manage_site: ClassVar[bool] = False
    reloads: ClassVar[bool] = False
    verifies: ClassVar[bool] = False
    args: ClassVar[tuple[Arg, ...]] = tuple(
        a for a in TlsOriginModule.args if a.name not in _CERT_ONLY
    )


class TlsSiteModule(TlsOriginModule):
    """The TLS site (site file, host TLS policy, enabled), pointing at the ``current``
    certificate; the certificate is left alone."""

    name: ClassVar[str] = "tls_site"
    example: ClassVar[str] = """\
- name: TLS site
  tls_site:
    hsts: true
  notify: reload web server
"""
    manage_cert: ClassVar[bool] = False
    reloads: ClassVar[bool] = False
    verifies: ClassVar[bool] = False
    args: ClassVar[tuple[Arg, ...]] = tuple(
        a for a in TlsOriginModule.args if a.name not in _SITE_ONLY
    )


class ReloadModule(Module):
    """Config test, then a graceful reload (the server is started if it is not running)."""

    name: ClassVar[str] = "reload"
    example: ClassVar[str] = """\
# under handlers:
- name: reload web server
  reload: {}
"""
    args: ClassVar[tuple[Arg, ...]] = (*(a for a in ARGS if a.name in ("server", "server_paths")),)

    def gather(self, conn: Connection, params: Mapping[str, Any], ctx: Context) -> Any:
        systemd = conn.run(["test", "-d", "/run/systemd/system"], become=ctx.become).ok
        servers = parse_detect(conn.run(detect_argv(), become=ctx.become).stdout)
        return systemd, servers

    def plan(self, params: Mapping[str, Any], facts: Any, ctx: Context) -> list[Change]:
        systemd, servers = facts
        server = params.get("server") or "auto"
        if server == "auto":
            if not servers:
                raise ModuleError("no web server found (nginx or apache2)", host=ctx.host)
            server = servers[0]
        adapter = adapter_for(server, params.get("server_paths"), where=f"{ctx.host}: server_paths")
        return [
            RunCommand(tuple(adapter.test_argv()), changed=False),
            RunCommand(tuple(adapter.reload_argv(systemd))),
        ]


class VerifyModule(Module):
    """A TLS handshake with SNI for every name; fails below ``require_mode``. Changes nothing."""

    name: ClassVar[str] = "verify"
    example: ClassVar[str] = """\
- name: what the edge sees
  verify:
    require_mode: strict
"""
    args: ClassVar[tuple[Arg, ...]] = (
        Arg("names", "list", elements="str", help="default: the host var tls_names"),
        Arg("address", "str", default=None, help="default: listen_address, then the host address"),
        Arg("port", "int", default=443, help="HTTPS port"),
        Arg(
            "require_mode",
            "str",
            default="strict",
            choices=REQUIRE,
            help="lowest SSL mode accepted (auto: as tls_origin decides)",
        ),
        Arg(
            "issuer",
            "dict",
            default=None,
            help="trust anchors from this issuer (default: host var)",
        ),
        Arg("pins", "list", elements="str", default=None, help="SPKI pins the key must match"),
        Arg("fingerprint", "str", default=None, help="the SHA-256 fingerprint that must be served"),
        Arg("timeout", "int", default=10, help="seconds the handshakes may take"),
    )

    def plan(self, params: Mapping[str, Any], facts: Any, ctx: Context) -> list[Change]:
        return []

    def run(
        self, conn: Connection, params: Mapping[str, Any], ctx: Context, applier: Any
    ) -> ModuleResult:
        names = tuple(params.get("names") or ctx.vars.get("tls_names") or ())
        if not names:
            raise ModuleError("no names: set 'names' or the host var tls_names", host=ctx.host)
        address = target_address(
            ctx.vars,
            ctx.host,
            explicit=params.get("address"),
            connected=getattr(conn, "address", None),
        )
        trust, built = "", None
        config = params.get("issuer") or ctx.vars.get("issuer")
        if isinstance(config, Mapping):
            built = services.issuer(config, where=ctx.host)
            trust = services.trust_anchors(config, built)
        pins = tuple(params.get("pins") or ())
        require = required_mode(params["require_mode"], pins=pins, issuer=built, issuer_trust=trust)
        problem, verdict = verify_site(
            str(address),
            int(params.get("port") or 443),
            names,
            expect=params.get("fingerprint"),
            trust=trust,
            pins=pins,
            require=require,
            now=wall_clock(ctx),
            timeout=float(params.get("timeout") or 10),
        )
        if problem is not None:
            raise VerifyError(problem, where=ctx.host)
        return ModuleResult(
            data={"mode": verdict.mode if verdict else "", "names": list(names)},
            msg=f"ready for {verdict.mode if verdict else '?'}",
        )
