"""ACME Renewal Information (RFC 9773) on certbot's ``acme`` library: the certificate id, the
suggested window with a moment chosen inside it, ``Retry-After``, and orders that name the
certificate they replace.

The window is kept in a :class:`RenewalInfoStore` (the local state) until the CA's
``Retry-After`` has passed, so a run that finds the window still far makes no request.
"""

from __future__ import annotations

import base64
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, runtime_checkable

from acme import client as acme_client
from acme import messages
from cryptography import x509
from josepy.json_util import field

from agent.pki.renewal import RenewalWindow
from agent.state.records import RenewalInfo

#: Ask again after this long when the CA gives no (or a garbled) Retry-After (RFC 9773 4.3.3).
DEFAULT_RETRY_AFTER = timedelta(hours=6)
#: Bounds on the CA's Retry-After: not more often than a minute, not less than daily.
RETRY_AFTER_BOUNDS = (timedelta(minutes=1), timedelta(hours=24))


@runtime_checkable
class RenewalInfoStore(Protocol):
    """Where windows are kept between runs (:class:`agent.state.store.Store` has it)."""

    def renewal_info(self, cert_id: str) -> RenewalInfo | None:
        """The window last fetched for ``cert_id``, or None."""
        ...

    def save_renewal_info(self, info: RenewalInfo) -> None:
        """Keep (or replace) the window of ``info.cert_id``."""
        ...


class MemoryRenewalInfoStore:
    """A :class:`RenewalInfoStore` in memory (tests, or no state configured)."""

    def __init__(self) -> None:
        self._infos: dict[str, RenewalInfo] = {}

    def renewal_info(self, cert_id: str) -> RenewalInfo | None:
        return self._infos.get(cert_id)

    def save_renewal_info(self, info: RenewalInfo) -> None:
        self._infos[info.cert_id] = info


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def cert_id(cert: x509.Certificate) -> str | None:
    """RFC 9773 certificate id: base64url(AKI keyIdentifier) "." base64url(DER serial content
    octets); ``None`` for a certificate without an authority key identifier."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    if not aki.key_identifier:
        return None
    serial = cert.serial_number
    raw = serial.to_bytes(math.ceil((serial.bit_length() + 1) / 8), "big", signed=True)
    return f"{_b64(aki.key_identifier)}.{_b64(raw)}"


def retry_after(value: str | None, *, now: datetime) -> datetime:
    """When to ask again, from a ``Retry-After`` header (seconds or an HTTP date), bounded by
    :data:`RETRY_AFTER_BOUNDS`; :data:`DEFAULT_RETRY_AFTER` when absent or unreadable."""
    delay = DEFAULT_RETRY_AFTER
    text = (value or "").strip()
    if text.isdigit():
        delay = timedelta(seconds=int(text))
    elif text:
        try:
            when = parsedate_to_datetime(text)
            delay = (when if when.tzinfo else when.replace(tzinfo=UTC)) - now
        except (TypeError, ValueError, IndexError):
            pass
    low, high = RETRY_AFTER_BOUNDS
    return now + min(max(delay, low), high)


def window_of(info: RenewalInfo) -> RenewalWindow | None:
    """The policy's view of a kept window (``None`` when the CA offered none)."""
    if info.start is None or info.end is None or info.renew_at is None:
        return None
    return RenewalWindow(
        start=info.start, end=info.end, renew_at=info.renew_at, explanation_url=info.explanation_url
    )


def fetch(
    client: acme_client.ClientV2,
    cert: x509.Certificate,
    *,
    directory_url: str,
    now: datetime,
    previous: RenewalInfo | None = None,
    uniform: Callable[[float, float], float] = random.uniform,
) -> RenewalInfo | None:
    """Ask the CA for ``cert``'s window (one unauthenticated GET); ``None`` when the directory
    has no ``renewalInfo`` or the certificate has no id.

    The moment inside the window is drawn with ``uniform`` once; a later answer with the same
    window keeps it, so every run renews at the same moment.

    Raises:
        requests.RequestException, ValueError, jose.DeserializationError: the CA's answer
            could not be had or read (the caller maps these to IssuerError).
    """
    ident = cert_id(cert)
    try:
        base = str(client.directory["renewalInfo"])
    except KeyError:
        return None
    if ident is None:
        return None
    resp = client.net.get(f"{base.rstrip('/')}/{ident}", content_type="application/json")
    body: Any = resp.json()
    window = messages.RenewalInfo.from_json(body).suggested_window
    start, end = _aware(window.start), _aware(window.end)
    if end < start:
        raise ValueError(f"renewal window ends ({end}) before it starts ({start})")
    if previous is not None and (previous.start, previous.end) == (start, end):
        renew_at = previous.renew_at
    else:
        renew_at = start + (end - start) * uniform(0.0, 1.0)
    explanation = body.get("explanationURL") if isinstance(body, dict) else None
    return RenewalInfo(
        cert_id=ident,
        directory_url=directory_url,
        checked_at=now,
        ask_after=retry_after(resp.headers.get("Retry-After"), now=now),
        start=start,
        end=end,
        renew_at=renew_at,
        explanation_url=str(explanation or ""),
    )


def _aware(when: datetime | None) -> datetime:
    if when is None:
        raise ValueError("renewal window without start or end")
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class ReplacingOrder(messages.NewOrder):
    """A new order that may name the certificate it replaces (RFC 9773 section 5)."""

    replaces: str | None = field("replaces", omitempty=True)


class AriClient(acme_client.ClientV2):
    """``ClientV2`` whose ``new_order`` can send ``replaces`` (acme 5.x has no such
    parameter); everything else is the library's."""

    def new_order(
        self, csr_pem: bytes, profile: str | None = None, replaces: str | None = None
    ) -> messages.OrderResource:
        if replaces is None:
            return super().new_order(csr_pem, profile)
        csr = x509.load_pem_x509_csr(csr_pem)
        names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        identifiers = [
            messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=name)
            for name in names.get_values_for_type(x509.DNSName)
        ] + [
            messages.Identifier(typ=messages.IDENTIFIER_IP, value=str(ip))
            for ip in names.get_values_for_type(x509.IPAddress)
        ]
        order = ReplacingOrder(identifiers=identifiers, profile=profile or "", replaces=replaces)
        response = self._post(self.directory["newOrder"], order)
        body = messages.Order.from_json(response.json())
        authorizations = [
            self._authzr_from_response(self._post_as_get(url), uri=url)
            for url in body.authorizations
        ]
        return messages.OrderResource(
            body=body,
            uri=response.headers.get("Location"),
            authorizations=authorizations,
            csr_pem=csr_pem,
        )


def is_replaces_refusal(err: Exception) -> bool:
    """True when a CA refused an order because of its ``replaces`` (the certificate was
    already replaced, or the server does not take the field): order again without it."""
    return isinstance(err, messages.Error) and err.code in ("alreadyReplaced", "malformed")
