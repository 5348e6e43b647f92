"""``tls_origin``: one site on one origin brought to a verified TLS state, as one transaction.

Certificate (key + CSR + issue + stage, renewed only when needed), TLS site, graceful reload
and verification together: any failure (config test, reload, verification) restores the
previous certificate and site, reloads again, verifies the old state is back, and fails the
host. Round trips after connecting: 1 when nothing changes (the gather script), 2 for a
rotation (gather, apply), plus the controller's own TLS handshakes.

:meth:`TlsOriginModule.run` is the orchestration of named steps, each in its own module:
gather (:mod:`.remote`), decide (:mod:`.decide`, pure), issue (:mod:`.issue`), apply
(:mod:`.remote`), verify (:mod:`.verify`), record and revoke (here).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from agent.modules.base import (
    Applier,
    Arg,
    Change,
    Context,
    Module,
    ModuleError,
    ModuleResult,
    RemovePath,
)
from agent.modules.tls import argcheck, remote, services
from agent.modules.tls.decide import (
    Desired,
    Renewal,
    cert_data,
    decide,
    desired,
    leaf_info,
    target_address,
    with_main_config,
)
from agent.modules.tls.facts import OriginFacts
from agent.modules.tls.issue import Issued, issue, record, revoke_replaced
from agent.modules.tls.placement import placed
from agent.modules.tls.spec import ARGS
from agent.modules.tls.transaction import OriginProbe, Transaction
from agent.modules.tls.verify import (
    Judgement,
    Vantage,
    reachable,
    verify_or_rollback,
)
from agent.pki.issuers.base import Issuer
from agent.pki.modes import required_mode
from agent.pki.pins import spki_pin
from agent.pki.renewal import renew_before_from_days
from agent.transport.base import Connection

__all__ = ["TlsOriginModule"]


@dataclass(frozen=True)
class _Issuing:
    """The issuer of a run, with its id (``None`` for a module that leaves certificates)."""

    issuer: Issuer
    config: Mapping[str, Any]
    id: str
    legacy_id: str


class TlsOriginModule(Module):
    """Certificate + site + reload + verify for one site, transactionally."""

    name: ClassVar[str] = "tls_origin"
    #: What this module converges; the ``certificate`` and ``tls_site`` modules do a part.
    manage_cert: ClassVar[bool] = True
    manage_site: ClassVar[bool] = True
    reloads: ClassVar[bool] = True
    verifies: ClassVar[bool] = True
    args: ClassVar[tuple[Arg, ...]] = ARGS
    example: ClassVar[str] = """\
- name: certificate, TLS site, reload and verification
  tls_origin:
    names: [www.example.com, example.com]
    issuer: {backend: acme, directory: "https://acme-v02.api.letsencrypt.org/directory"}
    redirect_http: true
    require_mode: strict
"""

    @classmethod
    def check_for_host(
        cls, params: Mapping[str, Any], variables: Mapping[str, Any], host: str
    ) -> None:
        argcheck.check(
            _complete(params),
            variables,
            host,
            manage_cert=cls.manage_cert,
            manage_site=cls.manage_site,
        )

    # -- the steps ---------------------------------------------------------------------
    def plan(self, params: Mapping[str, Any], facts: Any, ctx: Context) -> list[Change]:
        """Pure: the transaction's changes for gathered ``facts`` (an :class:`OriginFacts`
        whose servers decide the candidate), with ``ctx.now`` as the clock."""
        params = _complete(params)
        want = self._desired(params, ctx, facts.servers[:1] or ("nginx",))
        transaction = self._decide(params, ctx, want, facts, self._issuing(params, ctx))
        return list(transaction.changes()) if transaction is not None else []

    def run(
        self, conn: Connection, params: Mapping[str, Any], ctx: Context, applier: Applier
    ) -> ModuleResult:
        params = _complete(params)
        issuing = self._issuing(params, ctx)
        want, facts = self._gather(conn, params, ctx)
        transaction = self._decide(params, ctx, want, facts, issuing)
        current = leaf_info(facts.fullchain_pem)
        if transaction is None:
            return self._unchanged(conn, want, facts, ctx, current)
        if ctx.check:
            return ModuleResult(
                changes=transaction.changes(), msg=transaction.renew or "site config changes"
            )
        issued = None
        if transaction.pending and issuing is not None:
            issued = issue(
                conn,
                transaction,
                want,
                facts,
                issuing.issuer,
                issuer_id=issuing.id,
                params=params,
                ctx=ctx,
                manage_site=self.manage_site,
            )
            transaction = issued.transaction
        vantage = self._vantage(conn, params, ctx, want)
        if vantage is not None and vantage.before != "yes":  # the origin looks at itself too
            transaction = replace(
                transaction, probes=_probes(want), expect=_expect(issued, current)
            )
        outputs = remote.apply(conn, transaction, host=ctx.host, become=ctx.become)
        data = self._data(want, transaction, issued, current)
        if vantage is not None:
            if transaction.probes:
                vantage = replace(vantage, origin_outputs=outputs)
            verdict, used = self._verify(
                params, conn, ctx, want, issued, current, issuing, vantage, transaction.token
            )
            data.update(mode=verdict, verified_from=used)
        if issued is not None and issuing is not None:
            record(ctx, want, issued, issuing.issuer)
            if params["revoke_replaced"]:
                data.update(revoke_replaced(facts, current, issuing.issuer))
        msg = transaction.renew or "site config changed"
        if "verified_from" in data:
            msg += f"; ready for {data['mode']}, verified from the {data['verified_from']}"
        return ModuleResult(changes=transaction.changes(), data=data, msg=msg)

    def _issuing(self, params: Mapping[str, Any], ctx: Context) -> _Issuing | None:
        """The run's issuer; a module that leaves certificates alone needs none."""
        if not self.manage_cert:
            return None
        config = params.get("issuer") or ctx.vars.get("issuer")
        built = services.issuer(config, where=ctx.host)
        assert isinstance(config, Mapping)  # services.issuer refused anything else
        return _Issuing(
            built, config, services.issuer_id(config), services.legacy_issuer_id(config)
        )

    def _desired(
        self, params: Mapping[str, Any], ctx: Context, servers: tuple[str, ...]
    ) -> Desired:
        """The desired state on the first of ``servers`` (the server argument wins)."""
        server = params["server"]
        if server == "auto":
            if not servers:
                raise ModuleError(
                    "no web server found (nginx or apache2)",
                    host=ctx.host,
                    hint="install one first (e.g. the package module)",
                )
            server = servers[0]
        client_ca = _read_local(params["client_ca"], ctx.host) if params.get("client_ca") else None
        return desired(
            params, ctx.vars, ctx.host, server, client_ca=client_ca, manage_site=self.manage_site
        )

    def _gather(
        self, conn: Connection, params: Mapping[str, Any], ctx: Context
    ) -> tuple[Desired, OriginFacts]:
        """One round trip: facts for every candidate server, then the chosen one's state."""
        server = params["server"]
        if server == "auto" and ctx.vars.get("web_server") in ("nginx", "apache"):
            server = str(ctx.vars["web_server"])  # the inventory says: one candidate to render
        candidates = ("nginx", "apache") if server == "auto" else (server,)
        wanted = tuple(self._desired(params, ctx, (c,)) for c in candidates)
        facts = remote.gather(
            conn, wanted, host=ctx.host, become=ctx.become, discover=self.manage_site
        )
        if server == "auto":
            found = [c for c in candidates if c in facts.servers]
            if not found:
                raise ModuleError(
                    "no web server found (nginx or apache2)",
                    host=ctx.host,
                    hint="install one first (e.g. the package module)",
                )
            server = found[0]
        chosen = candidates.index(server)
        facts = remote.facts_for(facts, wanted, chosen)
        want = wanted[chosen]
        if self.manage_site:
            want, facts = placed(want, facts, ctx.host)
            want = with_main_config(want, facts, ctx.host)
        return want, facts

    def _decide(
        self,
        params: Mapping[str, Any],
        ctx: Context,
        want: Desired,
        facts: OriginFacts,
        issuing: _Issuing | None,
    ) -> Transaction | None:
        renewal = None
        if issuing is not None:
            window = None
            if facts.fullchain_pem and not params["force"]:  # the CA may say when (ACME ARI)
                window = issuing.issuer.renewal_window(
                    facts.fullchain_pem, now=ctx.now, ask=not ctx.check
                )
            renewal = Renewal(
                key_type=params["key_type"],
                issuer_id=issuing.id,
                legacy_issuer_id=issuing.legacy_id,
                renew_before=renew_before_from_days(params["renew_before_days"]),
                force=bool(params["force"]),
                ari_window=window,
            )
        return decide(
            want,
            facts,
            ctx.now,
            host=ctx.host,
            renewal=renewal,
            reload=self.reloads,
            keep_versions=params["keep_versions"],
            token=secrets.token_hex(4),
        )

    def _unchanged(
        self,
        conn: Connection,
        want: Desired,
        facts: OriginFacts,
        ctx: Context,
        current: Any,
    ) -> ModuleResult:
        """Nothing to change; an interrupted run's temporaries are removed (under the lock)."""
        base = {"name": want.name, **cert_data(current)}
        if not facts.leftovers:
            return ModuleResult(data={"changed": False, **base})
        cleanup = RemovePath(f"{want.cert_root}/{want.name}/.origin-agent-tmp-*", recursive=True)
        if not ctx.check:
            remote.cleanup(conn, want, become=ctx.become)
        return ModuleResult(
            changes=(cleanup,), msg="removed leftover temporaries", data={"changed": True, **base}
        )

    def _data(
        self, want: Desired, transaction: Transaction, issued: Issued | None, current: Any
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "changed": True,
            "name": want.name,
            "reason": transaction.renew or "site config",
            "version": transaction.version,
            **cert_data(issued.info if issued else current),
        }
        if transaction.next_files:
            data["next_key_used"] = transaction.consume_next
            data["next_pin"] = spki_pin(transaction.next_files[1].data)
        return data

    def _vantage(
        self, conn: Connection, params: Mapping[str, Any], ctx: Context, want: Desired
    ) -> Vantage | None:
        """Where this step verifies from (``None``: it does not verify). ``auto`` probes the
        controller's reach to the HTTPS port first: an origin it cannot reach (firewalled to
        the CDN's ranges, behind a bastion) is judged from the origin itself."""
        if not (self.verifies and params["verify"]):
            return None
        asked = params["verify_from"]
        controller = target_address(
            ctx.vars,
            ctx.host,
            explicit=params.get("verify_address"),
            connected=getattr(conn, "address", None),
        )
        origin = want.site.listen_address or "127.0.0.1"
        before = "yes"
        if asked == "origin":
            before = "no"
        elif asked == "auto":
            before = reachable(controller, want.site.https_port)
        return Vantage(asked, controller, origin, before=before)

    def _verify(
        self,
        params: Mapping[str, Any],
        conn: Connection,
        ctx: Context,
        want: Desired,
        issued: Issued | None,
        current: Any,
        issuing: _Issuing | None,
        vantage: Vantage,
        token: str,
    ) -> tuple[str, str]:
        trust = ""
        if issuing is not None:
            trust = services.trust_anchors(issuing.config, issuing.issuer)
        pins = tuple(params.get("pins") or ())
        verdict, used = verify_or_rollback(
            conn,
            want,
            ctx,
            vantage=vantage,
            info=issued.info if issued else current,
            previous=current,
            judgement=Judgement(
                trust,
                pins,
                required_mode(
                    params["require_mode"],
                    pins=pins,
                    issuer=issuing.issuer if issuing is not None else None,
                    issuer_trust=trust,
                ),
                float(params["verify_timeout"]),
            ),
            token=token,
        )
        return verdict.mode, used


def _probes(want: Desired) -> tuple[OriginProbe, ...]:
    address = want.site.listen_address or "127.0.0.1"
    return tuple(OriginProbe(address, want.site.https_port, n) for n in want.names)


def _expect(issued: Issued | None, current: Any) -> str:
    info = issued.info if issued is not None else current
    return info.fingerprint_sha256 if info is not None else ""


def _complete(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the whole step's defaults for what a part module does not take (the
    ``certificate`` part has no site arguments, yet renders the site to know its paths)."""
    return {a.name: a.default for a in TlsOriginModule.args} | dict(params)


def _read_local(path: str, host: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as err:
        raise ModuleError(f"cannot read {path}: {err.strerror}", host=host) from err
