"""``tls_origin``: one site on one origin brought to a verified TLS state, as one transaction.

Certificate (key + CSR + issue + stage, renewed only when needed), TLS site, graceful reload
and verification together: any failure (config test, reload, verification) restores the
previous certificate and site, reloads again, verifies the old state is back, and fails the
host. Round trips after connecting: 1 when nothing changes (the gather script), 2 for a
rotation (gather, apply), plus the controller's own TLS handshakes.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization

from agent.errors import AgentError, IssuerError, ValidationError
from agent.modules.base import (
    Applier,
    Arg,
    Change,
    Context,
    MakeDir,
    Module,
    ModuleError,
    ModuleResult,
    RemovePath,
    RunCommand,
    SwapSymlink,
    WriteFile,
)
from agent.modules.tls import facts as tls_facts
from agent.modules.tls import services, txn
from agent.pki.checks import check_bundle
from agent.pki.csr import make_csr
from agent.pki.inspect import CertInfo, inspect_certificate, load_certificates
from agent.pki.issuers.base import CertBundle, Issuer, IssueRequest
from agent.pki.keys import PrivateKey, key_type_of
from agent.pki.modes import MODES, ModeVerdict, evaluate
from agent.pki.pins import spki_pin
from agent.pki.probe import Served, probe, probe_http
from agent.servers.base import (
    Command,
    ServerAdapter,
    Symlink,
    adapter_for,
    detect_paths,
    parse_detect,
)
from agent.servers.site import SiteSpec
from agent.transport.base import Connection, Result

PID_FILES = {"nginx": ("/run/nginx.pid",), "apache": ("/run/apache2/apache2.pid",)}
STEADY = 3  # consecutive handshakes that must see the deployed certificate
REQUIRE = ("auto", "flexible", "full", "full_pinned", "strict")


@dataclass(frozen=True)
class Desired:
    """What the site must look like on this host (computed on the controller)."""

    name: str
    names: tuple[str, ...]
    adapter: ServerAdapter
    site: SiteSpec
    files: tuple[txn.FileWrite, ...]
    links: tuple[txn.LinkWrite, ...]
    commands: tuple[txn.EnableCommand, ...]


def renewal_reason(
    info: CertInfo | None,
    *,
    names: tuple[str, ...],
    key_type: str,
    issuer_id: str,
    meta: Mapping[str, Any],
    now: datetime,
    renew_before: timedelta,
    force: bool,
) -> str | None:
    """Pure: why the current certificate must be replaced (``None``: it may stay)."""
    if info is None:
        return "no certificate yet"
    if force:
        return "forced"
    if info.not_after - now <= renew_before:
        days = (info.not_after - now).days
        return "expired" if info.not_after <= now else f"expires in {days} days"
    if {n.lower() for n in info.names} != {n.lower() for n in names}:
        return "names changed"
    if info.key_type != key_type:
        return "key type changed"
    if meta.get("issuer_id") not in (None, issuer_id):
        return "issuer changed"
    return None


def wall_clock(ctx: Context) -> datetime:
    """The time to judge a CA's answer and a served certificate by: now, not the run's start
    (a rolling run over a big fleet lasts longer than any clock-skew allowance). Deciding what
    to renew still uses ``ctx.now``, so a plan is a pure function of its inputs."""
    from datetime import UTC

    return max(ctx.now, datetime.now(UTC))


class TlsOriginModule(Module):
    """Certificate + site + reload + verify for one site, transactionally."""

    name: ClassVar[str] = "tls_origin"
    #: What this module converges; the ``certificate`` and ``tls_site`` modules do a part.
    manage_cert: ClassVar[bool] = True
    manage_site: ClassVar[bool] = True
    reloads: ClassVar[bool] = True
    verifies: ClassVar[bool] = True
    args: ClassVar[tuple[Arg, ...]] = (
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
        Arg("renew_before_days", "int", default=30),
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
            "client_ca",
            "str",
            default=None,
            help="controller file: CA for authenticated origin pulls",
        ),
        Arg("verify", "bool", default=True),
        Arg("verify_address", "str", default=None),
        Arg("verify_timeout", "int", default=10),
        Arg("require_mode", "str", default="auto", choices=REQUIRE),
        Arg("pins", "list", elements="str", default=None),
        Arg("keep_versions", "int", default=3),
        Arg("revoke_replaced", "bool", default=False),
        Arg("cert_root", "path", default=txn.CERT_ROOT),
    )

    # -- desired state (pure apart from reading the client CA file) --------------------
    def desired(self, params: Mapping[str, Any], ctx: Context, servers: tuple[str, ...]) -> Desired:
        names = tuple(params.get("names") or ctx.vars.get("tls_names") or ())
        if not names:
            raise ModuleError("no names: set 'names' or the host var tls_names", host=ctx.host)
        name = txn.check_name(params.get("site") or names[0], where=f"{ctx.host}: site")
        server = params.get("server") or "auto"
        if server == "auto":
            if not servers:
                raise ModuleError(
                    "no web server found (nginx or apache2)",
                    host=ctx.host,
                    hint="install one first (e.g. the package module)",
                )
            server = servers[0]
        adapter = adapter_for(
            server,
            params.get("server_paths"),
            site_template=params.get("site_template"),
            where=f"{ctx.host}: server_paths",
        )
        cert_dir = f"{params.get('cert_root') or txn.CERT_ROOT}/{name}/current"
        client_ca_path = None
        files: list[txn.FileWrite] = []
        if params.get("client_ca"):
            client_ca_path = f"{params.get('cert_root') or txn.CERT_ROOT}/{name}/client-ca.pem"
            files.append(txn.FileWrite(client_ca_path, _read_local(params["client_ca"], ctx.host)))
        listen = params.get("listen_address") or ctx.vars.get("listen_address")
        site = SiteSpec(
            name=name,
            server_names=names,
            listen_address=listen,
            https_port=params.get("https_port") or 443,
            http_port=params.get("http_port") or 80,
            cert_dir=cert_dir,
            profile=params.get("profile") or "intermediate",
            redirect_http=bool(params.get("redirect_http")),
            hsts=bool(params.get("hsts")),
            acme_webroot=params.get("acme_webroot") or "/var/www/acme",
            client_ca_file=client_ca_path,
            document_root=params.get("document_root") or "/var/www/html",
            where=f"{ctx.host}: tls_origin",
        )
        if not self.manage_site:
            return Desired(name, names, adapter, site, (), (), ())
        files.append(txn.FileWrite(adapter.site_path(name), adapter.render_site(site).encode()))
        files.append(txn.FileWrite(adapter.paths.policy_file, adapter.render_policy(site).encode()))
        links: list[txn.LinkWrite] = []
        commands: list[txn.EnableCommand] = []
        for step in adapter.enable_steps(name):
            if isinstance(step, Symlink):
                links.append(txn.LinkWrite(step.path, step.target))
            elif isinstance(step, Command):
                commands.append(txn.EnableCommand(step.argv, step.check))
        return Desired(
            name,
            names,
            adapter,
            site,
            tuple(files),
            tuple(links),
            tuple(commands),
        )

    # -- the run -----------------------------------------------------------------------
    def plan(self, params: Mapping[str, Any], facts: Any, ctx: Context) -> list[Change]:
        raise NotImplementedError("tls_origin runs through run()")

    def run(
        self, conn: Connection, params: Mapping[str, Any], ctx: Context, applier: Applier
    ) -> ModuleResult:
        issuer_config = params.get("issuer") or ctx.vars.get("issuer")
        issuer = services.issuer(issuer_config, where=ctx.host)
        issuer_key = services.issuer_id(issuer_config or {})
        root = f"{params.get('cert_root') or txn.CERT_ROOT}"
        # 1. facts, one round trip: desired state for each candidate server, gathered together
        server = params.get("server") or "auto"
        if server == "auto" and ctx.vars.get("web_server") in ("nginx", "apache"):
            server = str(ctx.vars["web_server"])  # the inventory says: one candidate to render
        candidates = ("nginx", "apache") if server == "auto" else (server,)
        wanted = {s: self.desired(params, ctx, (s,)) for s in candidates}
        facts = self._gather(conn, root, params, ctx, tuple(wanted.values()))
        if server == "auto":
            if not facts.servers:
                raise ModuleError(
                    "no web server found (nginx or apache2)",
                    host=ctx.host,
                    hint="install one first (e.g. the package module)",
                )
            server = facts.servers[0]
        desired = wanted[server]
        # the gather ran every candidate's enable checks, in candidate order: keep this server's
        start = sum(len(wanted[c].commands) for c in candidates[: candidates.index(server)])
        facts = replace(facts, checks=facts.checks[start : start + len(desired.commands)])
        if self.manage_site:
            desired = _with_main_config(desired, facts, ctx.host)
        # 2. decide
        current = _leaf_info(facts.fullchain_pem)
        key_type = params.get("key_type") or "ec256"
        reason = (
            renewal_reason(
                current,
                names=desired.names,
                key_type=key_type,
                issuer_id=issuer_key,
                meta=facts.meta,
                now=ctx.now,
                renew_before=timedelta(days=params.get("renew_before_days") or 30),
                force=bool(params.get("force")),
            )
            if self.manage_cert
            else None
        )
        changed_files = tuple(f for f in desired.files if facts.files.get(f.path) != f.data)
        changed_links = tuple(
            link for link in desired.links if facts.links.get(link.path) != link.target
        )
        todo_commands = tuple(
            c for c, done in zip(desired.commands, facts.checks, strict=False) if not done
        )
        if reason is None and not changed_files and not changed_links and not todo_commands:
            if facts.leftovers:  # an interrupted run left temporaries: the next run removes them
                leftovers = f"{root}/{desired.name}/.origin-agent-tmp-"
                cleanup = RemovePath(leftovers + "*", recursive=True)
                if not ctx.check:
                    conn.run(["sh", "-c", 'rm -rf -- "$1"*', "sh", leftovers], become=ctx.become)
                return ModuleResult(
                    changes=(cleanup,),
                    msg="removed leftover temporaries",
                    data={"changed": True, "name": desired.name, **_cert_data(current)},
                )
            return ModuleResult(
                data={"changed": False, "name": desired.name, **_cert_data(current)}
            )
        changes = _describe(
            desired,
            reason,
            changed_files,
            changed_links,
            todo_commands,
            facts,
            root,
            reload=self.reloads,
        )
        if reason is not None and facts.next_pubkey_pem:  # the next key is used and replaced
            changes.append(
                WriteFile(f"{root}/{desired.name}/next/privkey.pem", b"", 0o600, secret=True)
            )
        if ctx.check:
            return ModuleResult(changes=tuple(changes), msg=reason or "site config changes")
        # 3. issue (controller side), stage, switch, test, reload
        version = None
        version_files: tuple[txn.FileWrite, ...] = ()
        info = current
        bundle = None
        next_files: tuple[txn.FileWrite, ...] = ()
        used_next = False
        if reason is not None:
            premade = _premade_next_key(conn, root, desired.name, facts, key_type, ctx.host)
            used_next = premade is not None
            key = premade or PrivateKey.generate(key_type)
            if facts.next_pubkey_pem is not None:  # the host keeps a next key: make the one after
                fresh = PrivateKey.generate(key_type)
                next_files = next_key_files(fresh)
            csr = make_csr(key, desired.names)
            if (
                getattr(issuer, "needs_http01", issuer.name == "acme")
                and self.manage_site
                and facts.files.get(desired.adapter.site_path(desired.name)) is None
            ):
                self._serve_acme_path(conn, desired, params, ctx, root)
            try:
                bundle = self._issue(issuer, key, csr, desired, params, ctx, conn)
            except IssuerError as err:
                raise ModuleError(str(err), host=ctx.host, hint="origin unchanged") from err
            try:
                info = check_bundle(
                    bundle,
                    csr_pem=csr,
                    names=desired.names,
                    now=wall_clock(ctx),
                    backend=issuer.name,
                )
            except IssuerError as err:
                raise ModuleError(str(err), host=ctx.host, hint="origin unchanged") from err
            # sortable names: the second, then the microsecond (fixed-width hex), then the
            # certificate's fingerprint; two issues in one second still sort by time
            stamp = wall_clock(ctx)
            version = f"{stamp:%Y%m%dT%H%M%SZ}-{stamp.microsecond:05x}{info.fingerprint_sha256[:7]}"
            meta = {
                "backend": issuer.name,
                "backend_id": bundle.backend_id,
                "issuer_id": issuer_key,
                "names": list(desired.names),
                "key_type": key_type,
                "serial": info.serial,
            }
            version_files = (
                txn.FileWrite("privkey.pem", key.pem().reveal_bytes(), 0o600),
                txn.FileWrite("cert.pem", bundle.cert_pem.strip().encode() + b"\n"),
                txn.FileWrite(
                    "chain.pem",
                    (bundle.chain_pem.strip() + "\n").encode() if bundle.chain_pem.strip() else b"",
                ),
                txn.FileWrite("fullchain.pem", bundle.fullchain_pem.encode()),
                txn.FileWrite("meta.json", json.dumps(meta, sort_keys=True).encode() + b"\n"),
            )
        server_cmds = _server_commands(desired.adapter)
        transaction = txn.Transaction(
            name=desired.name,
            server=server_cmds,
            version=version,
            version_files=version_files,
            files=changed_files,
            links=changed_links,
            commands=todo_commands,
            keep_versions=params.get("keep_versions") or 3,
            cert_root=root,
            consume_next=used_next,
            next_files=next_files,
            reload=self.reloads,
        )
        result, outcome = apply_transaction(conn, transaction, become=ctx.become)
        if not outcome.ok:
            what = {
                "write_failed": "writing files failed",
                "test_failed": "config test failed",
                "reload_failed": "reload failed",
            }.get(outcome.status, f"transaction {outcome.status}")
            raise ModuleError(
                f"{what}: {outcome.message or result.stderr.strip()[-300:]}",
                host=ctx.host,
                hint="previous certificate and site restored",
            )
        # 4. verify from outside
        data: dict[str, Any] = {
            "changed": True,
            "name": desired.name,
            "reason": reason or "site config",
            "version": version,
            **_cert_data(info),
        }
        if next_files:
            data["next_key_used"] = used_next
            data["next_pin"] = spki_pin(next_files[1].data)
        if self.verifies and params.get("verify", True):
            verdict = self._verify_or_rollback(
                conn, params, ctx, desired, info, current, issuer, issuer_config, server_cmds, root
            )
            data["mode"] = verdict.mode
        # 5. record, and revoke what was replaced
        if bundle is not None and info is not None:
            self._record(ctx, desired, info, issuer, bundle)
            if (
                params.get("revoke_replaced")
                and current is not None
                and issuer.can_revoke
                and facts.meta.get("backend") == issuer.name
            ):
                try:
                    issuer.revoke(
                        facts.fullchain_pem or "", str(facts.meta.get("backend_id") or "")
                    )
                    data["revoked"] = current.serial
                except IssuerError as err:
                    data["revoke_error"] = str(err)
        return ModuleResult(changes=tuple(changes), data=data, msg=reason or "site config changed")

    def _gather(
        self,
        conn: Connection,
        root: str,
        params: Mapping[str, Any],
        ctx: Context,
        wanted: tuple[Desired, ...],
    ) -> tls_facts.OriginFacts:
        name = wanted[0].name
        paths = sorted(
            {f.path for d in wanted for f in d.files} | {d.adapter.main_config_path for d in wanted}
        )
        links = sorted({link.path for d in wanted for link in d.links})
        checks = [c.check for d in wanted for c in d.commands]
        script = tls_facts.script(
            root=f"{root}/{name}",
            files=paths,
            links=links,
            checks=checks,
            detect=detect_paths(),
            pid_files=[p for ps in PID_FILES.values() for p in ps],
        )
        result = conn.run(["sh", "-c", script], become=ctx.become, timeout=60)
        if "@@running" not in result.stdout:
            tail = (result.stderr.strip() or result.stdout.strip())[-200:]
            raise ModuleError(
                f"could not read the origin's state (exit {result.exit_code}): {tail or 'no output'}",
                host=ctx.host,
            )
        return tls_facts.parse(result.stdout, detect_parser=parse_detect)

    def _serve_acme_path(
        self, conn: Connection, desired: Desired, params: Mapping[str, Any], ctx: Context, root: str
    ) -> None:
        """A fresh origin does not serve the ACME http-01 path yet: put an HTTP-only site in
        place (one transaction, reloaded) and wait until the path answers, before ordering."""
        from agent.servers.base import TEMPLATES_DIR, render_template

        adapter = desired.adapter
        text = render_template(
            TEMPLATES_DIR / adapter.name / "acme-http.conf.j2", desired.site.template_vars()
        )
        webroot = (params.get("acme_webroot") or "/var/www/acme").rstrip("/")
        token = f"origin-agent-probe-{secrets.token_hex(8)}"
        probe_file = f"{webroot}/.well-known/acme-challenge/{token}"
        commands = tuple(c for c in desired.commands if any("a2ensite" in part for part in c.argv))
        transaction = txn.Transaction(
            name=desired.name,
            server=_server_commands(adapter),
            cert_root=root,
            files=(
                txn.FileWrite(adapter.site_path(desired.name), text.encode()),
                txn.FileWrite(probe_file, token.encode()),
            ),
            links=desired.links,
            commands=commands,
        )
        _, outcome = apply_transaction(conn, transaction, become=ctx.become)
        if not outcome.ok:
            raise ModuleError(
                f"could not serve the ACME challenge path: {outcome.status} {outcome.message}",
                host=ctx.host,
                hint="site restored",
            )
        address = (
            params.get("verify_address")
            or desired.site.listen_address
            or ctx.vars.get("ansible_host")
            or ctx.host
        )
        deadline = time.monotonic() + float(params.get("verify_timeout") or 10)
        streak = 0
        try:
            while True:
                answer = probe_http(
                    str(address),
                    desired.site.http_port,
                    desired.names[0],
                    path=f"/.well-known/acme-challenge/{token}",
                    timeout=3,
                )
                if answer.status == 200 and answer.body.strip() == token.encode():
                    streak += 1  # old workers answer for a moment after a reload: want it steady
                    if streak >= 5:
                        return
                    continue
                streak = 0
                if time.monotonic() >= deadline:
                    raise ModuleError(
                        f"the ACME challenge path does not answer on port {desired.site.http_port} "
                        f"(HTTP {answer.status or answer.error})",
                        host=ctx.host,
                    )
                time.sleep(0.05)
        finally:
            conn.run(["rm", "-f", probe_file], become=ctx.become)

    def _issue(
        self,
        issuer: Issuer,
        key: PrivateKey,
        csr: str,
        desired: Desired,
        params: Mapping[str, Any],
        ctx: Context,
        conn: Connection,
    ) -> CertBundle:
        publisher = _WebrootPublisher(
            conn, params.get("acme_webroot") or "/var/www/acme", ctx.become
        )
        request = IssueRequest(
            csr_pem=csr,
            names=desired.names,
            validity=timedelta(days=params.get("validity_days") or 90),
            publisher=publisher,
            key_pem=key.pem().reveal() if issuer.name == "selfsigned" else None,
        )
        return issuer.issue(request)

    def _verify_or_rollback(
        self,
        conn: Connection,
        params: Mapping[str, Any],
        ctx: Context,
        desired: Desired,
        info: CertInfo | None,
        previous: CertInfo | None,
        issuer: Issuer,
        issuer_config: Any,
        server_cmds: txn.ServerCommands,
        root: str,
    ) -> ModeVerdict:
        address = (
            params.get("verify_address")
            or desired.site.listen_address
            or getattr(conn, "address", None)
            or ctx.vars.get("ansible_host")
            or ctx.vars.get("host")
            or ctx.host
        )
        port = desired.site.https_port
        timeout = float(params.get("verify_timeout") or 10)
        trust = services.trust_anchors(issuer_config, issuer)
        pins = tuple(params.get("pins") or ())
        require = params.get("require_mode") or "auto"
        if require == "auto":
            require = "full_pinned" if pins and not trust else ("strict" if trust else "full")
        expect = info.fingerprint_sha256 if info else None
        problem, verdict = verify_site(
            address,
            port,
            desired.names,
            expect=expect,
            trust=trust,
            pins=pins,
            require=require,
            now=wall_clock(ctx),
            timeout=timeout,
        )
        if problem is None:
            assert verdict is not None
            return verdict
        undo = conn.run(
            txn.shell_argv(txn.rollback_script(desired.name, server_cmds, cert_root=root)),
            become=ctx.become,
            timeout=120,
        )
        back = txn.parse_outcome(undo.stdout)
        restored = "previous certificate restored"
        if not back.ok:
            restored = f"rollback failed too ({back.status}: {back.message})"
        elif previous is not None:
            again, _ = verify_site(
                address,
                port,
                desired.names,
                expect=previous.fingerprint_sha256,
                trust="",
                pins=(),
                require="full",
                now=wall_clock(ctx),
                timeout=timeout,
            )
            if again is not None:
                restored = f"previous certificate restored but not served: {again}"
        raise ModuleError(f"verification failed: {problem}", host=ctx.host, hint=restored)

    def _record(
        self, ctx: Context, desired: Desired, info: CertInfo, issuer: Issuer, bundle: CertBundle
    ) -> None:
        from agent.state.records import IssuedCertificate

        try:
            services.store().record_certificate(
                IssuedCertificate(
                    host=ctx.host,
                    name=desired.name,
                    serial=info.serial,
                    fingerprint=info.fingerprint_sha256,
                    pin=info.pin_sha256,
                    not_after=info.not_after,
                    backend=issuer.name,
                    issued_at=wall_clock(ctx),
                    backend_id=bundle.backend_id,
                    names=desired.names,
                    cert_pem=bundle.cert_pem,
                )
            )
        except AgentError:
            raise
        except Exception as err:  # the origin is fine; the record is not: say so, keep going
            raise ModuleError(
                f"certificate deployed but not recorded in the state store: {err}", host=ctx.host
            ) from err


def apply_transaction(
    conn: Connection, transaction: txn.Transaction, *, become: bool
) -> tuple[Result, txn.Outcome]:
    """Run a transaction on the origin: one command, the payload on its stdin."""
    result = conn.run(
        txn.shell_argv(txn.apply_script(transaction)),
        stdin=txn.payload(transaction),
        become=become,
        timeout=120,
    )
    return result, txn.parse_outcome(result.stdout)


def verify_site(
    address: str,
    port: int,
    names: tuple[str, ...],
    *,
    expect: str | None,
    trust: str,
    pins: tuple[str, ...],
    require: str,
    now: datetime,
    timeout: float,
) -> tuple[str | None, ModeVerdict | None]:
    """Handshake for every name until the deployed certificate is served (bounded), then judge
    the mode. Returns (problem or None, verdict of the last name)."""
    deadline = time.monotonic() + timeout
    verdict: ModeVerdict | None = None
    for name in names:
        served: Served | None = None
        streak = 0  # a reload leaves old workers answering for a moment: want it steady
        while True:
            served = probe(  # only the confirming handshake also asks GET / (client-cert check)
                address,
                port,
                name,
                timeout=max(1.0, min(5.0, deadline - time.monotonic())),
                http_request=streak == STEADY - 1,
            )
            fp = _fingerprint(served)
            # no expected fingerprint: any certificate (a reload may still be opening the port)
            streak = streak + 1 if (fp is not None if expect is None else fp == expect) else 0
            if streak >= STEADY:
                break
            if time.monotonic() >= deadline:
                if streak:
                    break
                what = (
                    f"serves {fp[:16]}..."
                    if fp
                    else f"serves nothing ({served.outcome}: {served.error})"
                )
                return (
                    f"{address}:{port} for {name} {what}, expected {(expect or '')[:16]}...",
                    None,
                )
            if not streak:
                time.sleep(0.05)
        verdict = evaluate(served, names=[name], trust_anchors_pem=trust, pins=pins, now=now)
        if require in MODES and not verdict.at_least(require):
            why = "; ".join(verdict.reasons) or verdict.mode
            return f"{name} is ready for {verdict.mode}, not {require}: {why}", verdict
    return None, verdict


def _fingerprint(served: Served) -> str | None:
    der = served.leaf_der
    if der is None:
        return None
    import hashlib

    return hashlib.sha256(der).hexdigest()


class _WebrootPublisher:
    """ACME http-01 responses as files in the origin's webroot, over the connection."""

    def __init__(self, conn: Connection, webroot: str, become: bool) -> None:
        self.conn, self.webroot, self.become = conn, webroot.rstrip("/"), become

    def _path(self, path: str) -> str:
        if (
            not path.startswith("/.well-known/acme-challenge/")
            or "/" in path[len("/.well-known/acme-challenge/") :]
        ):
            raise ValidationError(f"unexpected challenge path {path!r}")
        return self.webroot + path

    def publish(self, path: str, content: str) -> None:
        target = self._path(path)
        self.conn.run(["mkdir", "-p", target.rsplit("/", 1)[0]], become=self.become, check=True)
        self.conn.write(target, content.encode(), mode=0o644)

    def unpublish(self, path: str) -> None:
        self.conn.run(["rm", "-f", self._path(path)], become=self.become)


def _with_main_config(desired: Desired, facts: tls_facts.OriginFacts, host: str) -> Desired:
    """Add the server's main config file, edited for our policy, when it needs editing."""
    path = desired.adapter.main_config_path
    current = facts.files.get(path)
    if current is None:
        return desired
    try:
        text = current.decode()
    except UnicodeDecodeError:
        raise ModuleError(f"{path} is not text", host=host) from None
    edited = desired.adapter.edit_main_config(text, desired.site)
    if edited == text:
        return desired
    return replace(desired, files=desired.files + (txn.FileWrite(path, edited.encode()),))


def _server_commands(adapter: ServerAdapter) -> txn.ServerCommands:
    return txn.server_commands(
        adapter.test_argv(),
        adapter.reload_argv(False),
        adapter.reload_argv(True),
        adapter.start_argv(False),
        adapter.start_argv(True),
    )


def next_key_files(key: PrivateKey) -> tuple[txn.FileWrite, txn.FileWrite]:
    """The files of ``NAME/next/``: ``privkey.pem`` (0600) and ``pubkey.pem`` (SPKI PEM)."""
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return (
        txn.FileWrite("privkey.pem", key.pem().reveal_bytes(), txn.NEXT_FILES["privkey.pem"]),
        txn.FileWrite("pubkey.pem", public, txn.NEXT_FILES["pubkey.pem"]),
    )


def _premade_next_key(
    conn: Connection, root: str, name: str, facts: tls_facts.OriginFacts, key_type: str, host: str
) -> PrivateKey | None:
    """The pre-made ``NAME/next`` key when there is one of ``key_type`` (else ``None``).

    Raises:
        ModuleError: next/pubkey.pem is unreadable, or privkey.pem is missing or is not the
            key whose pin next/pubkey.pem (and so possibly the edge) announces.
    """
    if not facts.next_pubkey_pem:
        return None
    where = f"{root}/{name}/next"
    hint = f"remove {where} and run 'origin-agent pins --make-next'"
    try:
        public = serialization.load_pem_public_key(facts.next_pubkey_pem.encode())
        pin = spki_pin(facts.next_pubkey_pem)
    except (ValueError, TypeError, AgentError):
        raise ModuleError(
            f"{where}/pubkey.pem is not a PEM public key", host=host, hint=hint
        ) from None
    if key_type_of(public) != key_type:  # type: ignore[arg-type]
        return None  # made for another key type: replaced by a fresh next key below
    data = conn.read(f"{where}/privkey.pem")
    if data is None:
        raise ModuleError(
            f"{where}/pubkey.pem exists but privkey.pem does not", host=host, hint=hint
        )
    key = PrivateKey.from_pem(data, where=f"{host}: {where}/privkey.pem")
    if key.pin != pin:
        raise ModuleError(
            f"{where}/privkey.pem does not match pubkey.pem (pin {pin})", host=host, hint=hint
        )
    return key


def _leaf_info(fullchain: str | None) -> CertInfo | None:
    if not fullchain:
        return None
    try:
        return inspect_certificate(load_certificates(fullchain)[0])
    except (AgentError, ValueError, IndexError):
        return None


def _cert_data(info: CertInfo | None) -> dict[str, Any]:
    if info is None:
        return {}
    return {
        "serial": info.serial,
        "not_after": info.not_after.isoformat(),
        "fingerprint": info.fingerprint_sha256,
        "pin": info.pin_sha256,
        "issuer": info.issuer,
    }


def _read_local(path: str, host: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as err:
        raise ModuleError(f"cannot read {path}: {err.strerror}", host=host) from err


def _describe(
    desired: Desired,
    reason: str | None,
    files: tuple[txn.FileWrite, ...],
    links: tuple[txn.LinkWrite, ...],
    commands: tuple[txn.EnableCommand, ...],
    facts: tls_facts.OriginFacts,
    root: str,
    *,
    reload: bool = True,
) -> list[Change]:
    """The transaction as Change values, for check mode, diff mode and the JSON output."""
    changes: list[Change] = []
    base = f"{root}/{desired.name}"
    if reason is not None:
        changes.append(MakeDir(f"{base}/NEW-VERSION", 0o755))
        changes.append(WriteFile(f"{base}/NEW-VERSION/privkey.pem", b"", 0o600, secret=True))
        changes.append(
            WriteFile(
                f"{base}/NEW-VERSION/fullchain.pem",
                b"(new certificate: " + reason.encode() + b")",
                0o644,
            )
        )
    for c in commands:
        changes.append(RunCommand(c.argv))
    for f in files:
        changes.append(WriteFile(f.path, f.data, f.mode, before=facts.files.get(f.path)))
    for link in links:
        changes.append(SwapSymlink(link.path, link.target, previous=facts.links.get(link.path)))
    if reason is not None:
        changes.append(
            SwapSymlink(f"{base}/current", "NEW-VERSION", previous=facts.current_version)
        )
    changes.append(RunCommand(tuple(desired.adapter.test_argv()), changed=False))
    if reload:
        changes.append(RunCommand(tuple(desired.adapter.reload_argv(facts.systemd))))
    return changes
