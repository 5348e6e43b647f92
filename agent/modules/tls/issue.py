"""The TLS step's one conversation with a CA: make (or take the pre-made) key, ask the issuer
for a certificate, check its answer, and fill the pending certificate of a decided
:class:`~agent.modules.tls.transaction.Transaction`. For an issuer that validates over HTTP
(ACME http-01), a fresh origin first gets an HTTP-only site serving the challenge path."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization

from agent.errors import AgentError, IssuerError, ValidationError
from agent.modules.base import Context, ModuleError
from agent.modules.tls import remote, services
from agent.modules.tls.decide import Desired, target_address
from agent.modules.tls.facts import OriginFacts
from agent.modules.tls.transaction import NEXT_FILES, Transaction
from agent.modules.tls.verify import wall_clock
from agent.pki.checks import check_bundle
from agent.pki.csr import make_csr
from agent.pki.inspect import CertInfo
from agent.pki.issuers.base import CertBundle, Issuer, IssueRequest
from agent.pki.keys import PrivateKey
from agent.pki.pins import spki_pin
from agent.pki.probe import probe_http
from agent.transport.base import Connection
from agent.transport.changes import WriteFile


@dataclass(frozen=True)
class Issued:
    """A transaction with its certificate filled in, and what was issued."""

    transaction: Transaction
    info: CertInfo
    bundle: CertBundle
    used_next: bool


def issue(
    conn: Connection,
    transaction: Transaction,
    want: Desired,
    facts: OriginFacts,
    issuer: Issuer,
    *,
    issuer_id: str,
    params: Mapping[str, Any],
    ctx: Context,
    manage_site: bool,
) -> Issued:
    """Issue the pending certificate of ``transaction`` (origin unchanged on failure).

    Raises:
        ModuleError: the CA refused or answered something unusable; the next key is broken.
    """
    key_type = params["key_type"]
    premade = premade_next_key(conn, want.cert_root, want.name, facts, key_type, ctx.host)
    key = premade or PrivateKey.generate(key_type)
    next_files = next_key_files(PrivateKey.generate(key_type)) if transaction.make_next else ()
    csr = make_csr(key, want.names)
    if issuer.needs_http01 and manage_site:
        _http01_ready(conn, want, facts, params, ctx)
    try:
        bundle = issuer.issue(
            IssueRequest(
                csr_pem=csr,
                names=want.names,
                validity=_validity(params["validity_days"]),
                publisher=WebrootPublisher(conn, params["acme_webroot"], ctx.become),
                key_pem=key.pem().reveal() if issuer.signs_with_key else None,
                replaces_pem=facts.fullchain_pem or "",
            )
        )
        info = check_bundle(
            bundle, csr_pem=csr, names=want.names, now=wall_clock(ctx), backend=issuer.name
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
        "issuer_id": issuer_id,
        "names": list(want.names),
        "key_type": key_type,
        "serial": info.serial,
    }
    filled = transaction.with_certificate(
        version,
        version_files(key, bundle, meta),
        next_files=next_files,
        consume_next=premade is not None,
    )
    return Issued(filled, info, bundle, premade is not None)


def _http01_ready(
    conn: Connection, want: Desired, facts: OriginFacts, params: Mapping[str, Any], ctx: Context
) -> None:
    """A fresh origin serves the ACME http-01 path before ordering: our HTTP-only site goes in
    first. An adopted site's first certificate cannot be validated that way (its TLS lines
    need the certificate they are for)."""
    if want.placement != "own" and facts.fullchain_pem is None:
        raise ModuleError(
            f"the first certificate of an adopted site ({want.site_path}) cannot be validated "
            "over HTTP by this origin yet",
            host=ctx.host,
            hint="issue it with dns-01 or another issuer first; origin unchanged",
        )
    if want.placement == "own" and facts.files.get(want.site_path) is None:
        serve_acme_path(conn, want, params, ctx)


def version_files(
    key: PrivateKey, bundle: CertBundle, meta: Mapping[str, Any]
) -> tuple[WriteFile, ...]:
    """The files of a certificate version directory (bare names; the key 0600)."""
    chain = bundle.chain_pem.strip()
    return (
        WriteFile("privkey.pem", key.pem().reveal_bytes(), 0o600),
        WriteFile("cert.pem", bundle.cert_pem.strip().encode() + b"\n"),
        WriteFile("chain.pem", (chain + "\n").encode() if chain else b""),
        WriteFile("fullchain.pem", bundle.fullchain_pem.encode()),
        WriteFile("meta.json", json.dumps(meta, sort_keys=True).encode() + b"\n"),
    )


def _validity(days: int | None) -> timedelta | None:
    """The lifetime to ask for (``None``: the backend's own default)."""
    return timedelta(days=days) if days else None


def next_key_files(key: PrivateKey) -> tuple[WriteFile, WriteFile]:
    """The files of ``NAME/next/``: ``privkey.pem`` (0600) and ``pubkey.pem`` (SPKI PEM)."""
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return (
        WriteFile("privkey.pem", key.pem().reveal_bytes(), NEXT_FILES["privkey.pem"]),
        WriteFile("pubkey.pem", public, NEXT_FILES["pubkey.pem"]),
    )


def premade_next_key(
    conn: Connection, root: str, name: str, facts: OriginFacts, key_type: str, host: str
) -> PrivateKey | None:
    """The pre-made ``NAME/next`` key when there is one of ``key_type`` (else ``None``).

    Raises:
        ModuleError: next/pubkey.pem is unreadable, or privkey.pem is missing or is not the
            key whose pin next/pubkey.pem (and so possibly the edge) announces.
    """
    from agent.modules.tls.decide import next_key_type

    where = f"{root}/{name}/next"
    if next_key_type(facts, where, host) != key_type or facts.next_pubkey_pem is None:
        return None  # none, or made for another key type: replaced by a fresh next key
    hint = f"remove {where} and run 'origin-agent pins --make-next'"
    pin = spki_pin(facts.next_pubkey_pem)
    data = conn.read(f"{where}/privkey.pem")
    if data is None:
        raise ModuleError(
            f"{where}/pubkey.pem exists but privkey.pem does not", host=host, hint=hint
        )
    try:
        key = PrivateKey.from_pem(data, where=f"{host}: {where}/privkey.pem")
    except AgentError as err:
        raise ModuleError(str(err), host=host, hint=hint) from err
    if key.pin != pin:
        raise ModuleError(
            f"{where}/privkey.pem does not match pubkey.pem (pin {pin})", host=host, hint=hint
        )
    return key


class WebrootPublisher:
    """ACME http-01 responses as files in the origin's webroot, over the connection."""

    def __init__(self, conn: Connection, webroot: str, become: bool) -> None:
        self.conn, self.webroot, self.become = conn, webroot.rstrip("/"), become

    def _path(self, path: str) -> str:
        prefix = "/.well-known/acme-challenge/"
        if not path.startswith(prefix) or "/" in path[len(prefix) :]:
            raise ValidationError(f"unexpected challenge path {path!r}")
        return self.webroot + path

    def publish(self, path: str, content: str) -> None:
        target = self._path(path)
        self.conn.run(["mkdir", "-p", target.rsplit("/", 1)[0]], become=self.become, check=True)
        self.conn.write(target, content.encode(), mode=0o644)

    def unpublish(self, path: str) -> None:
        self.conn.run(["rm", "-f", self._path(path)], become=self.become)


def serve_acme_path(
    conn: Connection, want: Desired, params: Mapping[str, Any], ctx: Context
) -> None:
    """A fresh origin does not serve the ACME http-01 path yet: put an HTTP-only site in place
    (one transaction, reloaded) and wait until the path answers, before ordering.

    Raises:
        ModuleError: the site could not be put in place, or the path does not answer.
    """
    adapter = want.adapter
    text = adapter.render_acme_site(want.site)
    token = f"origin-agent-probe-{secrets.token_hex(8)}"
    probe_file = f"{params['acme_webroot'].rstrip('/')}/.well-known/acme-challenge/{token}"
    transaction = Transaction(
        name=want.name,
        server=want.server,
        cert_root=want.cert_root,
        files=(
            WriteFile(want.site_path, text.encode()),
            WriteFile(probe_file, token.encode()),
        ),
        links=want.links,
        commands=tuple(c for c in want.commands if any("a2ensite" in p for p in c.argv)),
        token=secrets.token_hex(4),
    )
    _, outcome = remote.apply_transaction(conn, transaction, become=ctx.become)
    if not outcome.ok:
        raise ModuleError(
            f"could not serve the ACME challenge path: {outcome.status} {outcome.message}",
            host=ctx.host,
            hint="site restored",
        )
    address = target_address(
        ctx.vars,
        ctx.host,
        explicit=params.get("verify_address"),
        connected=getattr(conn, "address", None),
    )
    try:
        _wait_for_path(address, want, token, float(params["verify_timeout"]), ctx.host)
    finally:
        conn.run(["rm", "-f", probe_file], become=ctx.become)


def _wait_for_path(address: str, want: Desired, token: str, timeout: float, host: str) -> None:
    deadline = time.monotonic() + timeout
    streak = 0
    while True:
        answer = probe_http(
            address,
            want.site.http_port,
            want.names[0],
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
                f"the ACME challenge path does not answer on port {want.site.http_port} "
                f"(HTTP {answer.status or answer.error})",
                host=host,
            )
        time.sleep(0.05)


def record(ctx: Context, want: Desired, issued: Issued, issuer: Issuer) -> None:
    """Record an issued certificate in the local state store.

    Raises:
        ModuleError: the store failed (the origin is fine; the record is not).
    """
    from agent.state.records import IssuedCertificate

    info = issued.info
    try:
        services.store().record_certificate(
            IssuedCertificate(
                host=ctx.host,
                name=want.name,
                serial=info.serial,
                fingerprint=info.fingerprint_sha256,
                pin=info.pin_sha256,
                not_after=info.not_after,
                backend=issuer.name,
                issued_at=wall_clock(ctx),
                backend_id=issued.bundle.backend_id,
                names=want.names,
                cert_pem=issued.bundle.cert_pem,
            )
        )
    except AgentError:
        raise
    except Exception as err:  # the origin is fine; the record is not: say so, keep going
        raise ModuleError(
            f"certificate deployed but not recorded in the state store: {err}", host=ctx.host
        ) from err


def revoke_replaced(facts: OriginFacts, current: Any, issuer: Issuer) -> dict[str, Any]:
    """Revoke the replaced certificate where the CA that issued it can; what happened, as
    result data (a refusal is reported, never fatal: the new certificate is live)."""
    if not (current is not None and issuer.can_revoke and facts.meta.get("backend") == issuer.name):
        return {}
    try:
        issuer.revoke(facts.fullchain_pem or "", str(facts.meta.get("backend_id") or ""))
    except IssuerError as err:
        return {"revoke_error": str(err)}
    return {"revoked": current.serial}
