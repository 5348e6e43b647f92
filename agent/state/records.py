"""Typed records of the local state store. Times are aware UTC datetimes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from agent.secret import Secret


@dataclass(frozen=True)
class IssuedCertificate:
    """One certificate issued for a host.

    ``name`` is the certificate's name on the host (the first DNS name unless the plan names
    it otherwise); ``serial`` is lowercase hex; ``fingerprint`` is lowercase hex SHA-256 of the
    DER certificate; ``pin`` is the SPKI pin of its key.
    """

    host: str
    name: str
    serial: str
    fingerprint: str
    pin: str
    not_after: datetime
    backend: str
    issued_at: datetime
    backend_id: str = ""
    names: tuple[str, ...] = ()
    cert_pem: str = ""
    revoked_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True)
class AcmeAccount:
    """An ACME account registered at one directory URL. The key is PEM in a :class:`Secret`."""

    directory_url: str
    account_key: Secret = field(repr=False)
    account_url: str
    created_at: datetime
    email: str = ""


@dataclass(frozen=True)
class RunRecord:
    """One ``origin-agent run``: when, which plan, how it ended and its per-status counts."""

    id: int
    started_at: datetime
    plan: str
    ended_at: datetime | None = None
    status: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RenewalInfo:
    """The renewal window an ACME CA suggested for one certificate (RFC 9773), kept until
    ``ask_after`` (the CA's Retry-After). ``cert_id`` is the RFC 9773 certificate id;
    ``renew_at`` is the moment chosen inside the window. No window (``start`` None): the CA
    offered none when asked."""

    cert_id: str
    directory_url: str
    checked_at: datetime
    ask_after: datetime
    start: datetime | None = None
    end: datetime | None = None
    renew_at: datetime | None = None
    explanation_url: str = ""
