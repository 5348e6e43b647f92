"""Checks on every answer a certificate authority gives, before anything is deployed.

:func:`check_bundle` turns any wrong answer (not PEM, wrong key, wrong names, not valid now,
a chain that does not chain or does not reach the trust anchors) into one
:class:`~agent.errors.IssuerError` line naming the backend, and never lets a library exception out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from cryptography import x509

from agent.errors import IssuerError, ValidationError
from agent.pki.csr import normalize_name
from agent.pki.inspect import (
    CertInfo,
    PemError,
    chain_problem,
    inspect_certificate,
    issued_by,
    load_certificates,
)
from agent.pki.issuers.base import CertBundle
from agent.pki.pins import spki_der, spki_pin

DEFAULT_SKEW = timedelta(minutes=5)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _norm(name: str) -> str:
    try:
        return normalize_name(name)
    except ValidationError:
        return name.lower()


def _fmt(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def check_bundle(
    bundle: CertBundle,
    *,
    csr_pem: str,
    names: Sequence[str],
    now: datetime,
    backend: str,
    trust_anchors: str | Sequence[x509.Certificate] | None = None,
    skew: timedelta = DEFAULT_SKEW,
) -> CertInfo:
    """Check a CA's answer against what was asked for; return the leaf's :class:`CertInfo`.

    The leaf is the first certificate of ``bundle.cert_pem``; further certificates there (some
    CAs answer with a full chain) are taken as the start of the chain, before ``chain_pem``.

    Args:
        bundle: the CA's answer.
        csr_pem: the CSR that was sent; the leaf must carry its public key.
        names: the names asked for; the leaf's SANs must be exactly these (as a set).
        now: the current time (aware UTC).
        backend: the backend's name, for the error.
        trust_anchors: PEM text or certificates; if given, the chain must end at one of them
            (or at a certificate one of them signed).
        skew: how far in the future ``not_before`` may be (clock skew with the CA).

    Raises:
        IssuerError: the answer is wrong; the message says what is wrong in one line.
        ValidationError: ``trust_anchors`` is text that holds no certificate.
    """
    if now.tzinfo is None:
        raise ValueError("check_bundle needs an aware 'now'")
    anchors: list[x509.Certificate] | None = None
    if isinstance(trust_anchors, str):
        try:
            anchors = load_certificates(trust_anchors, where="trust anchors")
        except PemError as err:
            raise ValidationError("no PEM certificate found", where="trust anchors") from err
    elif trust_anchors is not None:
        anchors = list(trust_anchors)
    try:
        return _check(bundle, csr_pem, names, now, backend, anchors, skew)
    except IssuerError:
        raise
    except Exception as err:  # anything unforeseen is still a bad answer, never a crash
        raise IssuerError(
            f"answer could not be checked ({type(err).__name__})", backend=backend
        ) from err


def _check(
    bundle: CertBundle,
    csr_pem: str,
    names: Sequence[str],
    now: datetime,
    backend: str,
    anchors: list[x509.Certificate] | None,
    skew: timedelta,
) -> CertInfo:
    leaf, chain = _load_answer(bundle, backend)
    info = inspect_certificate(leaf)
    _check_key(leaf, info, csr_pem, backend)
    _check_names(info, names, backend)
    _check_validity([leaf, *chain], now, skew, backend)
    problem = chain_problem([leaf, *chain])
    if problem:
        raise IssuerError(f"chain does not chain: {problem}", backend=backend)
    if anchors is not None:
        top = ([leaf, *chain])[-1]
        if not any(top == a or issued_by(top, a) for a in anchors):
            raise IssuerError(
                f"chain does not lead to a trusted root (top issuer {_issuer_text(top)})",
                backend=backend,
            )
    return info


def _load_answer(
    bundle: CertBundle, backend: str
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The leaf and the chain after it (the rest of ``cert_pem``, then ``chain_pem``)."""
    try:
        certs = load_certificates(bundle.cert_pem or "")
    except PemError as err:
        raise IssuerError("answer is not a PEM certificate", backend=backend) from err
    chain = certs[1:]
    if (bundle.chain_pem or "").strip():
        try:
            chain += load_certificates(bundle.chain_pem)
        except PemError as err:
            raise IssuerError("chain is not PEM certificates", backend=backend) from err
    return certs[0], chain


def _check_key(leaf: x509.Certificate, info: CertInfo, csr_pem: str, backend: str) -> None:
    """The leaf must carry the CSR's public key."""
    try:
        csr_spki = spki_der(csr_pem)
    except ValidationError as err:
        raise IssuerError("the CSR sent could not be read back", backend=backend) from err
    if spki_der(leaf) != csr_spki:
        raise IssuerError(
            f"certificate is for another key (pin {info.pin_sha256}, CSR pin {spki_pin(csr_pem)})",
            backend=backend,
        )


def _check_names(info: CertInfo, names: Sequence[str], backend: str) -> None:
    """The leaf's names must be exactly those asked for (as a set)."""
    got = {_norm(n) for n in info.names}
    want = {_norm(n) for n in names}
    if got != want:
        missing, extra = want - got, got - want
        parts = []
        if missing:
            parts.append(f"missing {_fmt(missing)}")
        if extra:
            parts.append(f"unexpected {_fmt(extra)}")
        raise IssuerError(
            f"certificate names differ from those asked for: {'; '.join(parts)}", backend=backend
        )


def _check_validity(
    certs: Sequence[x509.Certificate], now: datetime, skew: timedelta, backend: str
) -> None:
    """Every certificate, leaf first, must be valid ``now`` (``not_before`` up to ``skew`` ahead)."""
    for index, cert in enumerate(certs):
        what = "certificate" if index == 0 else f"chain certificate {index}"
        if cert.not_valid_before_utc > now + skew:
            raise IssuerError(
                f"{what} is not valid before {_stamp(cert.not_valid_before_utc)} "
                f"(now {_stamp(now)})",
                backend=backend,
            )
        if cert.not_valid_after_utc < now:
            raise IssuerError(
                f"{what} expired at {_stamp(cert.not_valid_after_utc)} (now {_stamp(now)})",
                backend=backend,
            )


def _issuer_text(cert: x509.Certificate) -> str:
    """The issuer name of ``cert`` as RFC 4514 text."""
    return inspect_certificate(cert).issuer
