"""Which CDN SSL mode an origin is ready for, judged from what it served (pure).

The ladder, lowest first:

``off``
    Neither TLS nor plain HTTP answered.
``flexible``
    No TLS, but plain HTTP answers: the edge-to-origin hop would be clear text.
``full``
    TLS with *some* certificate: encrypted, not authenticated.
``full_pinned``
    The served leaf's key matches one of the given SPKI pins and the certificate is within its
    validity period: authenticated by the pin even when self-signed or misnamed.
``strict``
    Full (strict): within its validity period, every asked name matches (RFC 6125 wildcards:
    ``*`` is the whole leftmost label and stands for exactly one label), and the chain leads to
    one of the trust anchors (``cryptography.x509.verification``, the served intermediates as
    untrusted helpers; the anchors' own policy checks apply). The anchors are the edge's own
    (public CAs and Cloudflare's Origin CA, :mod:`agent.pki.trust`) plus any given.

:func:`evaluate` returns the highest mode reached and, for each rung missed, why;
:func:`required_mode` says what ``require_mode: auto`` asks for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, VerificationError

from agent.pki.issuers.base import Issuer
from agent.pki.pins import spki_pin
from agent.pki.probe import Served
from agent.pki.trust import TrustStore, edge_trust

Mode = Literal["off", "flexible", "full", "full_pinned", "strict"]
MODES: tuple[Mode, ...] = ("off", "flexible", "full", "full_pinned", "strict")


@dataclass(frozen=True)
class ModeVerdict:
    """The highest mode reached, and why each higher one was not."""

    mode: Mode
    reasons: tuple[str, ...] = ()
    leaf_pin: str | None = None
    client_cert_required: bool = False

    def at_least(self, mode: Mode) -> bool:
        return MODES.index(self.mode) >= MODES.index(mode)


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


def name_matches(pattern: str, name: str) -> bool:
    """RFC 6125 matching of one certificate DNS name (``pattern``) against ``name``.

    A wildcard is only the complete leftmost label of a pattern with at least two more labels
    and matches exactly one non-empty label; an asked name that is itself a wildcard matches only
    the identical pattern.
    """
    pattern, name = _norm(pattern), _norm(name)
    if pattern == name:
        return True
    if not pattern.startswith("*.") or name.startswith("*."):
        return False
    suffix = pattern[2:]
    if "*" in suffix or suffix.count(".") < 1:
        return False
    head, dot, rest = name.partition(".")
    return bool(head) and bool(dot) and rest == suffix


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return ext.get_values_for_type(x509.DNSName), [
        str(a) for a in ext.get_values_for_type(x509.IPAddress)
    ]


def _covers(cert: x509.Certificate, name: str) -> bool:
    dns, ips = _sans(cert)
    try:
        return str(ipaddress.ip_address(name)) in ips
    except ValueError:
        return any(name_matches(pattern, name) for pattern in dns)


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, Exception):
        return False
    return True


def _subject_for(
    cert: x509.Certificate, names: Sequence[str]
) -> x509.DNSName | x509.IPAddress | None:
    """A name the leaf covers, to check the chain without mixing in a name mismatch (an asked
    wildcard ``*.a.example`` stands for one name under it: a verifier takes no wildcards)."""
    for name in names:
        if _covers(cert, name):
            try:
                return x509.IPAddress(ipaddress.ip_address(name))
            except ValueError:
                norm = _norm(name)
                return x509.DNSName("x" + norm[1:] if norm.startswith("*.") else norm)
    dns, ips = _sans(cert)
    if dns:
        first = _norm(dns[0])
        return x509.DNSName("x" + first[1:] if first.startswith("*.") else first)
    if ips:
        return x509.IPAddress(ipaddress.ip_address(ips[0]))
    return None


def _chain_problem(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    trust: TrustStore,
    names: Sequence[str],
    now: datetime,
) -> str:
    """Why the chain does not lead to an anchor ("" when it does), judged at a time inside the
    leaf's validity so that expiry is reported once, on its own."""
    if trust.store is None:
        return "no trust anchors to check the chain against"
    subject = _subject_for(leaf, names)
    if subject is None:
        return "certificate has no subjectAltName"
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    at = min(max(now, start), end - timedelta(seconds=1)) if end > start else now
    verifier = PolicyBuilder().store(trust.store).time(at).build_server_verifier(subject)
    try:
        verifier.verify(leaf, intermediates)
    except VerificationError as err:
        if "candidates exhausted" in str(err):
            return (
                f"no path from issuer {leaf.issuer.rfc4514_string()} to a trust anchor "
                "(unknown CA or missing intermediate)"
            )
        return str(err)
    return ""


def evaluate(
    served: Served,
    *,
    names: Iterable[str],
    trust_anchors_pem: str | Sequence[str] = (),
    trust: TrustStore | None = None,
    pins: Iterable[str] = (),
    now: datetime,
    http_available: bool = False,
) -> ModeVerdict:
    """Judge ``served`` (see the module docstring).

    Args:
        names: every name the edge will ask for (all must match for ``strict``).
        trust_anchors_pem: roots trusted besides the edge's own (an issuer's root, ``trust:``).
        trust: the anchors to judge by, instead of the edge's own plus ``trust_anchors_pem``
            (:func:`agent.pki.trust.edge_trust` builds them once per distinct extra text).
        pins: acceptable ``pin-sha256`` values.
        now: aware UTC time to judge validity at.
        http_available: plain HTTP answers on the site's HTTP port (from :func:`probe_http`).

    Raises:
        PemError: ``trust_anchors_pem`` holds text that is not a certificate.
    """
    names = [n for n in names]
    if trust is None:
        extra = (
            trust_anchors_pem
            if isinstance(trust_anchors_pem, str)
            else "\n".join(trust_anchors_pem)
        )
        trust = edge_trust(extra)
    required = served.requires_client_cert
    if not served.chain_der:
        why = served.error or f"no certificate served ({served.outcome})"
        what = "TLS handshake failed" if served.tls else "no TLS"
        reason = f"{what} on {served.address}:{served.port}: {why}"
        if served.outcome == "plain_http" or http_available:
            return ModeVerdict("flexible", (reason,), client_cert_required=required)
        return ModeVerdict("off", (reason, "no plain HTTP either"), client_cert_required=required)
    certs = served.certificates
    leaf, intermediates = certs[0], certs[1:]
    pin = spki_pin(leaf)
    reasons = _validity(leaf, now)
    in_time = not reasons
    reasons += _name_problems(leaf, names)
    if _self_signed(leaf) and leaf not in trust:
        reasons.append("self-signed")
    else:
        problem = _chain_problem(leaf, intermediates, trust, names, now)
        if problem:
            reasons.append(f"untrusted chain: {problem}")
    if not reasons:
        return ModeVerdict("strict", (), pin, required)
    if in_time and pin in set(pins):
        return ModeVerdict("full_pinned", tuple(reasons), pin, required)
    if pins:
        reasons.append("key matches none of the pins")
    return ModeVerdict("full", tuple(reasons), pin, required)


def _name_problems(leaf: x509.Certificate, names: list[str]) -> list[str]:
    """Why ``leaf`` does not serve every name of ``names`` (empty: it does)."""
    if not names:
        return ["no names to check"]
    missing = [n for n in names if not _covers(leaf, n)]
    if not missing:
        return []
    dns, ips = _sans(leaf)
    sans = ", ".join(dns + ips) or "no SAN"
    return [f"name mismatch: {', '.join(missing)} not in certificate ({sans})"]


def _validity(leaf: x509.Certificate, now: datetime) -> list[str]:
    """Why ``leaf`` is not valid at ``now`` (empty: it is)."""
    if now < leaf.not_valid_before_utc:
        return [f"not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"]
    if now > leaf.not_valid_after_utc:
        return [f"expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"]
    return []


def deployment_problems(
    served: Served,
    verdict: ModeVerdict,
    *,
    want: Mode,
    expected_cert_pem: str | None = None,
    profile: str | None = None,
    tls12: Served | None = None,
) -> tuple[str, ...]:
    """What is wrong with a deployment, judged after the reload (empty: all good).

    Args:
        served: the probe of the live endpoint; ``verdict``: :func:`evaluate` of it.
        want: the mode the site must reach at least.
        expected_cert_pem: the leaf just deployed; the endpoint must serve exactly it.
        profile: "modern" or "intermediate"; with ``tls12`` (a probe limited to TLS 1.2) checks
            that the protocol policy took effect (nginx: another default server can override it).
    """
    problems: list[str] = []
    if expected_cert_pem is not None:
        expected = x509.load_pem_x509_certificate(expected_cert_pem.encode())
        leaf = served.certificates[0] if served.chain_der else None
        if leaf is None:
            problems.append(f"no certificate served: {served.error or served.outcome}")
        elif leaf != expected:
            problems.append(
                f"serves serial {leaf.serial_number:x} (pin {spki_pin(leaf)}), "
                f"not the deployed serial {expected.serial_number:x} (pin {spki_pin(expected)})"
            )
    if not verdict.at_least(want):
        why = "; ".join(verdict.reasons) or "no reason given"
        problems.append(f"ready for {verdict.mode}, not {want}: {why}")
    if profile is not None and tls12 is not None:
        if profile == "modern" and tls12.outcome == "ok":
            problems.append(
                "accepts TLS 1.2 although the profile is modern "
                "(another server may be the default for this address with its own protocols)"
            )
        elif profile == "intermediate" and tls12.outcome not in ("ok", "client_cert_required"):
            problems.append(f"refuses TLS 1.2 although the profile is intermediate: {tls12.error}")
    return tuple(problems)


def required_mode(
    requested: str = "auto",
    *,
    pins: Iterable[str] = (),
    issuer: Issuer | type[Issuer] | None = None,
    issuer_trust: str = "",
) -> Mode:
    """The mode a deployment must reach: ``requested`` itself, or what ``auto`` means (pure).

    ``auto`` asks for ``strict`` when the issuer's certificates chain to a CA, i.e. it does
    not sign with the certificate's own key (every backend but ``selfsigned``: public ACME CAs
    and Cloudflare's Origin CA are in the edge's default trust; a private CA's root comes from
    the backend or the config's ``trust:``), or when the issuer's config names roots to trust
    (``issuer_trust``, as :func:`agent.modules.tls.services.trust_anchors` returns them).
    Otherwise ``full_pinned`` when ``pins`` are given, else ``full``.

    Raises:
        ValueError: ``requested`` is neither ``auto`` nor a mode.
    """
    if requested != "auto":
        for mode in MODES:
            if mode == requested:
                return mode
        raise ValueError(f"unknown mode {requested!r} (auto, {', '.join(MODES)})")
    if (issuer is not None and not issuer.signs_with_key) or issuer_trust.strip():
        return "strict"
    return "full_pinned" if any(True for _ in pins) else "full"
