"""The TLS step's decisions, pure: what the site must look like on a host (:class:`Desired`),
whether its certificate must be replaced (:func:`renewal_reason`), and the
:class:`~agent.modules.tls.transaction.Transaction` that takes the origin from its gathered
facts to that state (:func:`decide`). No I/O and no clock: ``now``, the facts and the contents
of controller files come in as arguments, so every decision is a scenario test
(tests/unit/modules/test_tls_decide.py).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization

from agent.errors import AgentError
from agent.modules.base import ModuleError
from agent.modules.tls.facts import OriginFacts
from agent.modules.tls.transaction import CERT_ROOT, ServerCommands, Transaction, check_name
from agent.pki.inspect import CertInfo, inspect_certificate, load_certificates
from agent.pki.keys import key_type_of
from agent.pki.renewal import DEFAULT_RENEW_BEFORE, RenewalWindow, renewal_due
from agent.servers.base import ServerAdapter, adapter_for
from agent.servers.site import SiteSpec
from agent.transport.changes import RunCommand, SwapSymlink, WriteFile
from agent.validate import shown


@dataclass(frozen=True)
class Desired:
    """What the site must look like on this host (computed on the controller)."""

    name: str
    names: tuple[str, ...]
    adapter: ServerAdapter
    site: SiteSpec
    files: tuple[WriteFile, ...]
    links: tuple[SwapSymlink, ...]
    commands: tuple[RunCommand, ...]
    cert_root: str = CERT_ROOT
    placement: str = "own"  # own site file, or an operator's site adopted / twinned
    site_file: str = ""  # the site's config file ("": the adapter's default path)

    @property
    def site_path(self) -> str:
        return self.site_file or self.adapter.site_path(self.name)

    @property
    def server(self) -> ServerCommands:
        """The adapter's config test, reload and start commands, for the transaction script."""
        a = self.adapter
        return ServerCommands(
            tuple(a.test_argv()),
            tuple(a.reload_argv(False)),
            tuple(a.reload_argv(True)),
            tuple(a.start_argv(False)),
            tuple(a.start_argv(True)),
        )


@dataclass(frozen=True)
class Renewal:
    """How the current certificate is judged (``None`` where a module leaves it alone)."""

    key_type: str
    issuer_id: str
    renew_before: timedelta | None = DEFAULT_RENEW_BEFORE  # None: the renewal policy's rule
    force: bool = False
    legacy_issuer_id: str = ""  # the id earlier versions recorded for the same issuer
    ari_window: RenewalWindow | None = None  # the CA's suggested window (ACME ARI)


def names_of(params: Mapping[str, Any], variables: Mapping[str, Any], host: str) -> tuple[str, ...]:
    """The DNS names of the site: the ``names`` argument, else the host var ``tls_names``."""
    raw = params.get("names") or variables.get("tls_names") or ()
    if not isinstance(raw, list | tuple) or not all(isinstance(n, str) for n in raw):
        raise ModuleError(
            f"tls_names must be a list of names, not {type(raw).__name__} {shown(raw, 40)}",
            host=host,
            hint='write tls_names: ["a.example.com"]',
        )
    if not raw:
        raise ModuleError("no names: set 'names' or the host var tls_names", host=host)
    return tuple(raw)


def desired(
    params: Mapping[str, Any],
    variables: Mapping[str, Any],
    host: str,
    server: str,
    *,
    client_ca: bytes | None = None,
    manage_site: bool = True,
) -> Desired:
    """The site's files, links and enable commands on ``server`` ("nginx" or "apache").

    ``client_ca`` is the content of the ``client_ca`` file (read by the caller).

    Raises:
        ModuleError, ValidationError: no names, a bad site name, path or template.
    """
    names = names_of(params, variables, host)
    name = check_name(params.get("site") or names[0], where=f"{host}: site")
    adapter = adapter_for(
        server,
        params.get("server_paths"),
        site_template=params.get("site_template"),
        where=f"{host}: server_paths",
    )
    root = params.get("cert_root") or CERT_ROOT
    files: list[WriteFile] = []
    client_ca_path = f"{root}/{name}/client-ca.pem" if client_ca is not None else None
    if client_ca is not None and client_ca_path is not None:
        files.append(WriteFile(client_ca_path, client_ca))
    site = SiteSpec(
        name=name,
        server_names=names,
        listen_address=params.get("listen_address") or variables.get("listen_address"),
        https_port=params["https_port"],
        http_port=params["http_port"],
        cert_dir=f"{root}/{name}/current",
        profile=params["profile"],
        redirect_http=bool(params.get("redirect_http")),
        hsts=bool(params.get("hsts")),
        acme_webroot=params["acme_webroot"],
        client_ca_file=client_ca_path,
        document_root=params["document_root"],
        upstream=params.get("upstream") or variables.get("upstream"),
        where=f"{host}: tls_origin",
    )
    if not manage_site:
        return Desired(name, names, adapter, site, (), (), (), root)
    files.append(WriteFile(adapter.site_path(name), adapter.render_site(site).encode()))
    files.append(WriteFile(adapter.paths.policy_file, adapter.render_policy(site).encode()))
    steps = adapter.enable_steps(name)
    links = tuple(s for s in steps if isinstance(s, SwapSymlink))
    commands = tuple(s for s in steps if isinstance(s, RunCommand))
    return Desired(name, names, adapter, site, tuple(files), links, commands, root)


def with_main_config(want: Desired, facts: OriginFacts, host: str) -> Desired:
    """Add the server's main config file, edited for our policy, when it needs editing."""
    path = want.adapter.main_config_path
    current = facts.files.get(path)
    if current is None:
        return want
    try:
        text = current.decode()
    except UnicodeDecodeError:
        raise ModuleError(f"{path} is not text", host=host) from None
    edited = want.adapter.edit_main_config(text, want.site)
    if edited == text:
        return want
    return replace(want, files=(*want.files, WriteFile(path, edited.encode())))


def renewal_reason(
    info: CertInfo | None,
    *,
    names: tuple[str, ...],
    key_type: str,
    issuer_id: str,
    meta: Mapping[str, Any],
    now: datetime,
    renew_before: timedelta | None,
    force: bool,
    legacy_issuer_id: str = "",
    ari_window: RenewalWindow | None = None,
) -> str | None:
    """Why the current certificate must be replaced (``None``: it may stay). When it is due
    is the renewal policy's (:func:`agent.pki.renewal.renewal_due`): two thirds of its
    lifetime, unless ``renew_before`` or the CA's window says otherwise."""
    if info is None:
        return "no certificate yet"
    if force:
        return "forced"
    due = renewal_due(
        info.not_before, info.not_after, renew_before=renew_before, ari_window=ari_window
    ).reason(now)
    if due is not None:
        return due
    if {n.lower() for n in info.names} != {n.lower() for n in names}:
        return "names changed"
    if info.key_type != key_type:
        return "key type changed"
    if meta.get("issuer_id") not in (None, issuer_id, legacy_issuer_id or issuer_id):
        return "issuer changed"
    return None


def leaf_info(fullchain: str | None) -> CertInfo | None:
    """The served leaf of a fullchain PEM (``None``: none, or not a certificate)."""
    if not fullchain:
        return None
    return _leaf_info(fullchain)


@functools.lru_cache(maxsize=512)  # a step asks twice per host (decision, then result data)
def _leaf_info(fullchain: str) -> CertInfo | None:
    try:
        return inspect_certificate(load_certificates(fullchain)[0])
    except (AgentError, ValueError, IndexError):
        return None


def next_key_type(facts: OriginFacts, where: str, host: str) -> str | None:
    """The key type of the pre-made ``NAME/next`` key (``None``: there is none).

    Raises:
        ModuleError: next/pubkey.pem is not a PEM public key.
    """
    if not facts.next_pubkey_pem:
        return None
    try:
        public = serialization.load_pem_public_key(facts.next_pubkey_pem.encode())
        return key_type_of(public)  # type: ignore[arg-type]
    except (ValueError, TypeError, AgentError):
        raise ModuleError(
            f"{where}/pubkey.pem is not a PEM public key",
            host=host,
            hint=f"remove {where} and run 'origin-agent pins --make-next'",
        ) from None


def decide(
    want: Desired,
    facts: OriginFacts,
    now: datetime,
    *,
    host: str,
    renewal: Renewal | None,
    reload: bool = True,
    keep_versions: int = 3,
    token: str = "",
) -> Transaction | None:
    """The transaction from ``facts`` to ``want`` (``None``: the origin is already there).

    A renewal is decided with its certificate pending; the caller issues it and fills it in
    with :meth:`Transaction.with_certificate`.
    """
    reason = None
    if renewal is not None:
        reason = renewal_reason(
            leaf_info(facts.fullchain_pem),
            names=want.names,
            key_type=renewal.key_type,
            issuer_id=renewal.issuer_id,
            legacy_issuer_id=renewal.legacy_issuer_id,
            meta=facts.meta,
            now=now,
            renew_before=renewal.renew_before,
            force=renewal.force,
            ari_window=renewal.ari_window,
        )
    files = tuple(f for f in want.files if facts.files.get(f.path) != f.data)
    links = tuple(x for x in want.links if facts.links.get(x.path) != x.target)
    commands = tuple(c for c, done in zip(want.commands, facts.checks, strict=False) if not done)
    if reason is None and not files and not links and not commands:
        return None
    next_type = None
    if reason is not None and renewal is not None:
        next_type = next_key_type(facts, f"{want.cert_root}/{want.name}/next", host)
    return Transaction(
        name=want.name,
        server=want.server,
        files=files,
        links=links,
        commands=commands,
        reload=reload,
        keep_versions=keep_versions,
        cert_root=want.cert_root,
        renew=reason,
        make_next=next_type is not None,
        consume_next=renewal is not None and next_type == renewal.key_type,
        previous_version=facts.current_version,
        before_files=facts.files,
        before_links=facts.links,
        systemd=facts.systemd,
        token=token,
        error_log=want.adapter.error_log_path() if reload else "",
    )


def target_address(
    variables: Mapping[str, Any],
    host: str,
    *,
    explicit: str | None = None,
    connected: str | None = None,
) -> str:
    """The one answer to "which address does the controller probe for this host": an explicit
    address (a ``verify_address`` argument), else the address the SSH connection reached, else
    ``ansible_host``, the ``host`` var, the site's ``listen_address`` (an address the server
    binds may be private: it comes last), the inventory name."""
    for candidate in (
        explicit,
        connected,
        variables.get("ansible_host"),
        variables.get("host"),
        variables.get("listen_address"),
    ):
        if candidate:
            return str(candidate)
    return host


def cert_data(info: CertInfo | None) -> dict[str, Any]:
    """The certificate fields of a module result (``register``, JSON output)."""
    if info is None:
        return {}
    return {
        "serial": info.serial,
        "not_after": info.not_after.isoformat(),
        "fingerprint": info.fingerprint_sha256,
        "pin": info.pin_sha256,
        "issuer": info.issuer,
    }
