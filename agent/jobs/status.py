"""``origin-agent status``: what every origin serves, judged as the edge would judge it.

It reads the origins live (one TLS handshake per name from the controller; from the origin
itself over SSH when the controller cannot reach the HTTPS port) and the local state (what was
issued), and changes nothing. One row per host and certificate name,
sorted by urgency: the lowest SSL mode first, then the fewest days left.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from cryptography import x509

from agent.errors import AgentError, IssuerError, MissingSecretError
from agent.inventory import Host
from agent.jobs.hostvars import rendered
from agent.jobs.order import natural_key
from agent.jobs.targets import probe_target
from agent.jobs.vantage import UNREACHED, served_via_ssh
from agent.modules.tls import services
from agent.pki.inspect import CertInfo, inspect_certificate
from agent.pki.issuers.ari import RenewalInfoStore, cert_id, window_of
from agent.pki.modes import MODES, evaluate
from agent.pki.probe import Served, probe, probe_http
from agent.pki.renewal import RenewalWindow, renew_before_from_days, renewal_due
from agent.pki.trust import TrustStore, edge_trust

MODE_LABELS = {
    "off": "Off",
    "flexible": "Flexible",
    "full": "Full",
    "full_pinned": "Full (pinned)",
    "strict": "Full (strict)",
}


@dataclass(frozen=True)
class StatusRow:
    """One host and certificate name. Times are ISO 8601 UTC in the JSON output."""

    host: str
    name: str
    address: str
    port: int
    mode: str
    reasons: tuple[str, ...] = ()
    server: str = ""
    names: tuple[str, ...] = ()
    issuer: str = ""
    serial: str = ""
    not_after: datetime | None = None
    days_left: int | None = None
    pin: str = ""
    fingerprint: str = ""
    client_cert_required: bool = False
    backend: str = ""
    recorded: bool = False  # the served certificate is one the local state recorded
    vantage: str = "controller"  # where the handshake came from: "controller" or "origin"
    renew_at: datetime | None = None  # when the renewal policy renews it ...
    renew_why: str = ""  # ... and why then
    renew_rule: str = ""  # lifetime, renew_before or ari
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mode_label(self) -> str:
        return MODE_LABELS.get(self.mode, self.mode)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["not_after"] = self.not_after.isoformat() if self.not_after else None
        data["renew_at"] = self.renew_at.isoformat() if self.renew_at else None
        data["mode_label"] = self.mode_label
        data["reasons"] = list(self.reasons)
        data["names"] = list(self.names)
        data.pop("extra")
        return data


def urgency(row: StatusRow) -> tuple[Any, ...]:
    """Lowest mode first, then fewest days left, then host and name in natural order."""
    days = row.days_left if row.days_left is not None else -(10**6)
    mode = MODES.index(row.mode) if row.mode in MODES else 0
    return (mode, days, natural_key(row.host), natural_key(row.name))


def _server_from_header(value: str) -> str:
    """The web server named by an HTTP ``Server`` header (as far as it tells)."""
    low = value.lower()
    if "nginx" in low:
        return "nginx"
    if "apache" in low:
        return "apache"
    return "".join(c for c in value if c.isprintable())[:30]


def renewal_of(
    info: CertInfo, host_vars: Mapping[str, Any], window: RenewalWindow | None = None
) -> dict[str, Any]:
    """The status fields saying when the renewal policy renews ``info`` and why, with the
    host's ``renew_before_days`` (as the rotate plan reads it) and the CA's window if known."""
    try:
        renew_before = renew_before_from_days(host_vars.get("renew_before_days"))
    except ValueError as err:
        return {"renew_why": str(err)}
    decision = renewal_due(
        info.not_before, info.not_after, renew_before=renew_before, ari_window=window
    )
    why = decision.why
    if decision.rule == "ari" and window is not None and window.explanation_url:
        why += f" (see {window.explanation_url})"
    return {"renew_at": decision.due_at, "renew_why": why, "renew_rule": decision.rule}


def kept_window(store: RenewalInfoStore, cert: x509.Certificate) -> RenewalWindow | None:
    """The CA's renewal window last fetched for ``cert`` (ARI), from the local state only."""
    ident = cert_id(cert)
    info = store.renewal_info(ident) if ident else None
    return window_of(info) if info is not None else None


def host_rows(
    host: Host,
    *,
    now: datetime,
    extra_trust: str = "",
    timeout: float = 5.0,
    recorded: Mapping[tuple[str, str], set[str]] | None = None,
    windows: Callable[[x509.Certificate], RenewalWindow | None] | None = None,
) -> list[StatusRow]:
    """Probe every TLS name of ``host`` and judge it, by the edge's trust (public CAs and the
    Origin CA) plus ``extra_trust`` and the host's issuer roots. ``host``'s variables are
    used as they are (:func:`collect` renders their templates). Never raises for what the
    origin does.

    ``windows`` gives the CA's renewal window kept for a certificate if any.

    Raises:
        ValidationError: the host's values are invalid (see :func:`probe_target`).
    """
    target = probe_target(host)
    trust, backend, trust_problem = _trust_of(host, extra_trust)
    pins = [str(p) for p in (host.vars.get("tls_pins") or [])]
    http = probe_http(target.address, target.http_port, target.names[0], timeout=timeout)
    seen, unreached, note = _served(host, target.address, target.https_port, target.names, timeout)
    rows: list[StatusRow] = []
    for name in target.names:
        served = seen[name]
        verdict = evaluate(
            served,
            names=[name],
            trust=trust,
            pins=pins,
            now=now,
            http_available=http.status is not None,
        )
        reasons = (
            tuple(verdict.reasons)
            + ((trust_problem,) if trust_problem and verdict.mode != "strict" else ())
            + ((note,) if note and name in unreached else ())
        )
        row = StatusRow(
            host=host.name,
            name=name,
            address=target.address,
            port=target.https_port,
            mode=verdict.mode,
            reasons=reasons,
            client_cert_required=verdict.client_cert_required,
            backend=backend,
            server=_server_from_header(http.server),
            vantage="origin"
            if name in unreached and name in seen and note.startswith("seen")
            else "controller",
        )
        if served.leaf_der:
            row = _with_certificate(row, served, host, now, recorded, windows)
        rows.append(row)
    return rows


def check_issuer(host: Host) -> None:
    """Refuse a host whose ``issuer:`` config is wrong (not a mapping, an unknown backend, a
    secret written inline, a plain-HTTP URL...) as a run would, before any probe. A secret
    that is not on this machine is fine: the report does without the issuer's roots.

    Raises:
        IssuerError: the config is wrong; the message names the host.
    """
    config = host.vars.get("issuer")
    if config is None:
        return
    try:
        services.issuer(config, where=host.name)
    except MissingSecretError:
        pass
    except IssuerError as err:
        raise IssuerError(
            f"{host.name}: {err.message}", backend=err.backend, hint=err.hint
        ) from None


def _trust_of(host: Host, extra_trust: str) -> tuple[TrustStore, str, str]:
    """The roots the host is judged by (the edge's, ``extra_trust``, its issuer's), its
    issuer backend, and why the issuer's roots are missing if they are."""
    extra, backend, problem = extra_trust, "", ""
    config = host.vars.get("issuer")
    if isinstance(config, Mapping):
        backend = str(config.get("backend") or "")
        try:
            extra += "\n" + services.trust_anchors(config, services.issuer(config, where=host.name))
        except AgentError as err:
            problem = f"trust anchors unavailable: {err}"
    return edge_trust(extra.strip()), backend, problem  # parsed once per distinct text


def _served(
    host: Host, address: str, port: int, names: Sequence[str], timeout: float
) -> tuple[dict[str, Served], list[str], str]:
    """A handshake per name from the controller; for the names whose port it cannot reach
    (firewalled to the CDN, behind a bastion), from the origin itself over SSH. Returns what
    was served, the names the controller did not reach, and a note saying where they were
    seen from (or why not)."""
    seen = {name: probe(address, port, name, timeout=timeout) for name in names}
    unreached = [n for n, served in seen.items() if served.outcome in UNREACHED]
    if not unreached:
        return seen, [], ""
    from_origin, why = served_via_ssh(host, port, unreached)
    if from_origin:
        seen.update(from_origin)
        return (
            seen,
            unreached,
            (f"seen from the origin over SSH: the controller cannot reach {address}:{port}"),
        )
    return seen, unreached, f"not seen from the origin either: {why}" if why else ""


def _with_certificate(
    row: StatusRow,
    served: Served,
    host: Host,
    now: datetime,
    recorded: Mapping[tuple[str, str], set[str]] | None,
    windows: Callable[[x509.Certificate], RenewalWindow | None] | None,
) -> StatusRow:
    """``row`` with what the served certificate says (names, expiry, pin, renewal)."""
    info = inspect_certificate(served.certificates[0])
    fingerprint = hashlib.sha256(served.leaf_der or b"").hexdigest()
    return StatusRow(
        **{
            **asdict(row),
            "names": info.names,
            "issuer": info.issuer,
            "serial": info.serial,
            "not_after": info.not_after,
            "days_left": int((info.not_after - now).total_seconds() // 86400),
            "pin": info.pin_sha256,
            "fingerprint": fingerprint,
            "recorded": fingerprint in (recorded or {}).get((host.name, row.name), set()),
            **renewal_of(info, host.vars, windows(served.certificates[0]) if windows else None),
        }
    )


def collect(
    hosts: Sequence[Host],
    *,
    now: datetime,
    extra_trust: str = "",
    forks: int = 20,
    timeout: float = 5.0,
    use_state: bool = True,
) -> list[StatusRow]:
    """Rows for every host, probed in parallel, sorted by urgency. Host variables are
    rendered as a plan renders them (``tls_names: ["{{ inventory_hostname }}"]``), then
    checked.

    Raises:
        PlanError: a host variable's template fails.
        ValidationError: a host's values are invalid; checked for every host before any probe.
        PemError: ``extra_trust`` holds text that is not a certificate.
    """
    hosts = [rendered(h) for h in hosts]
    for host in hosts:
        probe_target(host)
        check_issuer(host)
    edge_trust(extra_trust.strip(), where="--trust")  # loaded here, once, before the threads
    recorded: dict[tuple[str, str], set[str]] = {}
    windows: Callable[[x509.Certificate], RenewalWindow | None] | None = None
    if use_state:
        try:
            store = services.store()
            for cert in store.certificates():
                recorded.setdefault((cert.host, cert.name), set()).add(cert.fingerprint)
            windows = partial(kept_window, store)
        except AgentError:
            recorded = {}
    with ThreadPoolExecutor(max_workers=max(1, min(forks, len(hosts) or 1))) as pool:
        results = list(
            pool.map(
                lambda h: host_rows(
                    h,
                    now=now,
                    extra_trust=extra_trust,
                    timeout=timeout,
                    recorded=recorded,
                    windows=windows,
                ),
                hosts,
            )
        )
    return sorted((row for rows in results for row in rows), key=urgency)


def failing(
    rows: Sequence[StatusRow], *, fail_within: int | None, require_mode: str | None
) -> list[str]:
    """One line per row that breaks ``--fail-within`` / ``--require-mode``."""
    problems: list[str] = []
    for row in rows:
        if fail_within is not None and (row.days_left is None or row.days_left < fail_within):
            left = "no certificate" if row.days_left is None else f"{row.days_left} days left"
            problems.append(f"{row.host}: {row.name}: {left} (limit {fail_within})")
        if require_mode and MODES.index(row.mode) < MODES.index(require_mode):
            problems.append(
                f"{row.host}: {row.name}: ready for {row.mode_label}, not "
                f"{MODE_LABELS[require_mode]}: {'; '.join(row.reasons) or 'no TLS'}"
            )
    return problems
