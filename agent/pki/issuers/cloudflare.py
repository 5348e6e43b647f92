"""Cloudflare Origin CA backend (the v4 API calls are in :mod:`agent.pki.issuers.cloudflare_api`).

Config (the ``issuer:`` mapping)::

    backend: cloudflare
    token_env: CF_API_TOKEN           # API token (Authorization: Bearer), or token_file: PATH,
                                      # or the legacy Origin CA key: origin_ca_key_env / _file
    base_url: https://api.cloudflare.com/client/v4
    request_type: origin-ecc          # origin-ecc | origin-rsa; default: from the CSR's key
    requested_validity: 90            # days: 7, 30, 90, 365, 730, 1095, 5475 (default: the
                                      # smallest of those covering the validity the user
                                      # asked for, else 5475 as Cloudflare's own default)
    zone_id: ...                      # for listing certificates
    ca_bundle: PATH                   # TLS trust for base_url (default: system)
    timeout: 30 / retries: 3 / backoff: 1.0

The Origin CA signs directly with its root, which only Cloudflare's edge trusts: the bundle has no
chain. Error 1100 ("Failed to write certificate to Database") is retried like HTTP 5xx. With
``revoke_replaced`` (see :meth:`Issuer.revoke`) a replaced certificate is revoked by
``DELETE /certificates/{id}``; only after the new one is live, since revoking the served
certificate breaks Full (strict).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agent.errors import IssuerError
from agent.pki.issuers.base import CertBundle, Issuer, IssueRequest
from agent.pki.issuers.cloudflare_api import BACKEND as BACKEND
from agent.pki.issuers.cloudflare_api import DEFAULT_BASE_URL as DEFAULT_BASE_URL
from agent.pki.issuers.cloudflare_api import ID_PATTERN
from agent.pki.issuers.cloudflare_api import CloudflareClient as CloudflareClient
from agent.pki.issuers.http import (
    RetryPolicy,
    check_certificate,
    check_file,
    check_keys,
    check_url,
    load_secret,
    opt_str,
)
from agent.pki.issuers.keys import RETRY_KEYS, Key, default, names, paths
from agent.secret import Secret

log = logging.getLogger(__name__)

VALIDITIES = (7, 30, 90, 365, 730, 1095, 5475)
DEFAULT_VALIDITY = 5475  # days: Cloudflare's own default for requested_validity
REQUEST_TYPES = ("origin-ecc", "origin-rsa")
KEYS = (
    Key("base_url", "url", DEFAULT_BASE_URL, help="Cloudflare API base URL"),
    Key("token_env", "env", help="API token (Authorization: Bearer); one credential only"),
    Key("token_file", "file", help="or that token in a file"),
    Key("origin_ca_key_env", "env", help="or the legacy Origin CA key"),
    Key("origin_ca_key_file", "file", help="or that key in a file"),
    Key("request_type", choices=REQUEST_TYPES, help="default: from the CSR's key"),
    Key(
        "requested_validity",
        "int",
        choices=VALIDITIES,
        help="days (default: the smallest choice covering the requested validity)",
    ),
    Key("zone_id", help="the zone, for listing certificates"),
    Key("ca_bundle", "file", help="TLS trust for base_url (default: system)"),
    Key("timeout", "number", 30, help="seconds per HTTP request"),
    *RETRY_KEYS,
)
"""Every key of a ``cloudflare`` issuer mapping (the one list its validation and docs use)."""
ACCEPTED = names(KEYS)


def validity_days(days: float) -> int:
    """The smallest Origin CA validity choice covering ``days`` (5475 at most)."""
    return next((v for v in VALIDITIES if v >= days), VALIDITIES[-1])


@dataclass(frozen=True)
class CloudflareConfig:
    """Validated Cloudflare Origin CA settings."""

    credential: Secret = field(repr=False)
    service_key: bool = False
    base_url: str = DEFAULT_BASE_URL
    request_type: str = ""
    requested_validity: int = 0
    zone_id: str = ""
    ca_bundle: str | None = None
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> CloudflareConfig:
        """Validate an ``issuer:`` mapping.

        Raises:
            IssuerError: unknown key, inline secret, no or two credentials, bad value.
        """
        check_keys(config, backend=BACKEND, accepted=ACCEPTED)
        credential, service_key = _credential(config)
        base_url = check_url(
            opt_str(config, "base_url", backend=BACKEND, default=default(KEYS, "base_url")),
            key="base_url",
            backend=BACKEND,
        )
        request_type, validity = _order_choices(config)
        zone_id = opt_str(config, "zone_id", backend=BACKEND)
        if zone_id and not ID_PATTERN.fullmatch(zone_id):
            raise IssuerError(f"invalid zone_id {zone_id!r}", backend=BACKEND)
        bundle = opt_str(config, "ca_bundle", backend=BACKEND) or None
        if bundle:
            check_file(bundle, key="ca_bundle", backend=BACKEND)
        timeout = config.get("timeout", default(KEYS, "timeout"))
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout:
            raise IssuerError("timeout must be a positive number of seconds", backend=BACKEND)
        return cls(
            credential=credential,
            service_key=service_key,
            base_url=base_url,
            request_type=request_type,
            requested_validity=validity,
            zone_id=zone_id,
            ca_bundle=bundle,
            timeout=float(timeout),
            retry=RetryPolicy.from_config(config, backend=BACKEND),
        )


def _credential(config: Mapping[str, Any]) -> tuple[Secret, bool]:
    """The one credential given, and whether it is the legacy Origin CA (service) key.

    Raises:
        IssuerError: none given, or both.
    """
    token = load_secret(
        config, backend=BACKEND, env_key="token_env", file_key="token_file", what="API token"
    )
    service = load_secret(
        config,
        backend=BACKEND,
        env_key="origin_ca_key_env",
        file_key="origin_ca_key_file",
        what="Origin CA key",
    )
    if token is not None and service is not None:
        raise IssuerError("give either an API token or an Origin CA key, not both", backend=BACKEND)
    credential = token or service
    if credential is None:
        raise IssuerError(
            "no credential",
            backend=BACKEND,
            hint="set token_env or token_file (an API token with "
            "Zone > SSL and Certificates > Edit)",
        )
    if service is not None:
        log.warning(
            "the Origin CA key (X-Auth-User-Service-Key) is deprecated by "
            "Cloudflare; use an API token"
        )
    return credential, service is not None


def _order_choices(config: Mapping[str, Any]) -> tuple[str, int]:
    """``request_type`` and ``requested_validity`` ('' and 0 when not given).

    Raises:
        IssuerError: a value Cloudflare does not offer.
    """
    request_type = opt_str(config, "request_type", backend=BACKEND)
    if request_type and request_type not in REQUEST_TYPES:
        raise IssuerError(
            f"request_type {request_type!r} is not one of " + ", ".join(REQUEST_TYPES),
            backend=BACKEND,
        )
    validity = config.get("requested_validity", 0)
    if validity and (isinstance(validity, bool) or validity not in VALIDITIES):
        raise IssuerError(
            f"requested_validity {validity!r} is not one of " + ", ".join(map(str, VALIDITIES)),
            backend=BACKEND,
        )
    return request_type, int(validity or 0)


class CloudflareIssuer(Issuer):
    """Issues Origin CA certificates (trusted by Cloudflare's edge only)."""

    name = BACKEND
    keys: ClassVar[tuple[Key, ...]] = KEYS
    example: ClassVar[str] = (
        "backend: cloudflare\ntoken_env: CF_API_TOKEN\nrequested_validity: 5475\n"
    )
    path_keys: ClassVar[tuple[str, ...]] = paths(KEYS)
    can_revoke = True

    def __init__(self, config: CloudflareConfig, session: requests.Session | None = None) -> None:
        self.config = config
        self.client = CloudflareClient(
            config.base_url,
            credential=config.credential,
            service_key=config.service_key,
            ca_bundle=config.ca_bundle,
            timeout=config.timeout,
            retry=config.retry,
            session=session,
        )

    def __repr__(self) -> str:
        return f"CloudflareIssuer(base_url={self.config.base_url!r})"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, state: Any = None) -> CloudflareIssuer:
        return cls(CloudflareConfig.parse(config))

    def _request_type(self, csr_pem: str) -> str:
        try:
            key = x509.load_pem_x509_csr(csr_pem.encode()).public_key()
        except ValueError:
            raise IssuerError("the CSR is not a PEM certificate request", backend=BACKEND) from None
        derived = (
            "origin-ecc"
            if isinstance(key, ec.EllipticCurvePublicKey)
            else "origin-rsa"
            if isinstance(key, rsa.RSAPublicKey)
            else ""
        )
        if not derived and not self.config.request_type:
            raise IssuerError("the Origin CA signs RSA or EC keys only", backend=BACKEND)
        if self.config.request_type and derived and derived != self.config.request_type:
            log.warning(
                "request_type %s with a CSR suited to %s", self.config.request_type, derived
            )
        return self.config.request_type or derived

    def issue(self, request: IssueRequest) -> CertBundle:
        """Send the CSR and names to the Origin CA.

        Raises:
            IssuerError: Cloudflare refused (its message and code), was unreachable after
                retries, or answered something that is not a certificate for this CSR.
        """
        days = self.config.requested_validity or (
            validity_days(math.ceil(request.validity.total_seconds() / 86400))
            if request.validity is not None
            else DEFAULT_VALIDITY
        )
        result = self.client.create_certificate(
            request.csr_pem, list(request.names), self._request_type(request.csr_pem), days
        )
        leaf, chain = check_certificate(
            str(result.get("certificate", "")),
            csr_pem=request.csr_pem,
            names=request.names,
            backend=BACKEND,
        )
        cert_id = str(
            result.get("id") or x509.load_pem_x509_certificate(leaf.encode()).serial_number
        )
        return CertBundle(cert_pem=leaf, chain_pem=chain, backend=BACKEND, backend_id=cert_id)

    def certificates(self) -> list[dict[str, Any]]:
        """The zone's unrevoked Origin CA certificates (``zone_id`` from the config).

        Raises:
            IssuerError: no zone_id configured, Cloudflare refused, or unreachable.
        """
        if not self.config.zone_id:
            raise IssuerError("listing certificates needs zone_id", backend=BACKEND)
        return self.client.list_certificates(self.config.zone_id)

    def revoke(self, cert_pem: str, backend_id: str = "") -> None:
        """Revoke by Origin CA id (the serial number when ``backend_id`` is empty).

        Raises:
            IssuerError: Cloudflare refused, or unreachable.
        """
        cert_id = backend_id
        if not cert_id:
            try:
                cert_id = str(x509.load_pem_x509_certificate(cert_pem.encode()).serial_number)
            except ValueError:
                raise IssuerError("revoke: not a PEM certificate", backend=BACKEND) from None
        self.client.revoke_certificate(cert_id)
