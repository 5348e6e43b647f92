"""CFSSL backend: ``POST /api/v1/cfssl/sign`` or ``/authsign`` of a ``cfssl serve`` (or
``multirootca``) server.

Config (the ``issuer:`` mapping)::

    backend: cfssl
    url: http://127.0.0.1:8888        # required
    profile: server                   # signing profile (cfssl serve falls back to the default)
    label: ""                         # signer label (multirootca)
    auth_key_env: CFSSL_KEY           # or auth_key_file: PATH; hex HMAC key -> /authsign
    ca_bundle: PATH                   # TLS trust when url is https
    timeout: 30                       # seconds per HTTP request
    revoke: false                     # true: the server keeps a certificate database
                                      # (cfssl serve -db-config): replaced certificates are
                                      # revoked there (POST /revoke, reason superseded)
    retries: 3                        # extra attempts when unreachable / HTTP 5xx
    backoff: 1.0                      # first wait between attempts, doubling

``/authsign`` wraps the ordinary sign request: ``{"token": b64(HMAC-SHA256(key, request)),
"request": b64(request)}``. The chain is the signer's certificate from ``/info`` when it is an
intermediate (a self-signed signer is the root, which the verifier already trusts).

``/revoke`` needs the server's certificate database and has no authentication of its own in
CFSSL: keep the API on a trusted network. It finds a certificate by serial (decimal) and
authority key id (hex); cfssl 1.2.0 as packaged in Debian 12 records an empty key id, so a
"not found" with the certificate's key id is asked again with an empty one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import requests
from cryptography import x509

from agent.errors import IssuerError
from agent.pki.issuers.base import CertBundle, Issuer, IssueRequest
from agent.pki.issuers.http import (
    RetryPolicy,
    check_certificate,
    check_file,
    check_keys,
    check_url,
    load_secret,
    opt_str,
    request_json,
    split_pem_certs,
)
from agent.pki.issuers.keys import RETRY_KEYS, Key, default, names, paths, required
from agent.secret import Secret

log = logging.getLogger(__name__)

BACKEND = "cfssl"
KEYS = (
    Key("url", "url", required=True, help="the cfssl server (cfssl serve or multirootca)"),
    Key("profile", help="signing profile (default: the server's default)"),
    Key("label", help="signer label (multirootca)"),
    Key("auth_key_env", "env", help="hex HMAC key: requests go to /authsign"),
    Key("auth_key_file", "file", help="or that key in a file"),
    Key("ca_bundle", "file", help="TLS trust when url is https (default: system)"),
    Key("timeout", "number", 30, help="seconds per HTTP request"),
    *RETRY_KEYS,
    Key(
        "revoke",
        "bool",
        False,
        help="the server keeps a certificate database (cfssl serve -db-config): replaced "
        "certificates are revoked there",
    ),
)
"""Every key of a ``cfssl`` issuer mapping (the one list its validation and docs use)."""
ACCEPTED = names(KEYS)


@dataclass(frozen=True)
class CfsslConfig:
    """Validated cfssl settings."""

    url: str
    profile: str = ""
    label: str = ""
    auth_key: Secret | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    revoke: bool = False

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> CfsslConfig:
        """Validate an ``issuer:`` mapping.

        Raises:
            IssuerError: unknown/missing key, inline secret, bad URL, unreadable or non-hex key.
        """
        check_keys(config, backend=BACKEND, accepted=ACCEPTED, required=required(KEYS))
        url = check_url(opt_str(config, "url", backend=BACKEND), key="url", backend=BACKEND)
        key = load_secret(
            config,
            backend=BACKEND,
            env_key="auth_key_env",
            file_key="auth_key_file",
            what="cfssl auth key",
        )
        if key is not None:
            try:
                if not bytes.fromhex(key.reveal()):
                    raise ValueError
            except ValueError:
                raise IssuerError(
                    "the cfssl auth key is not a hex string", backend=BACKEND
                ) from None
        bundle = opt_str(config, "ca_bundle", backend=BACKEND) or None
        if bundle:
            check_file(bundle, key="ca_bundle", backend=BACKEND)
        revoke = config.get("revoke", default(KEYS, "revoke"))
        if not isinstance(revoke, bool):
            raise IssuerError(f"revoke must be true or false, got {revoke!r}", backend=BACKEND)
        timeout = config.get("timeout", default(KEYS, "timeout"))
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout:
            raise IssuerError("timeout must be a positive number of seconds", backend=BACKEND)
        return cls(
            url=url,
            profile=opt_str(config, "profile", backend=BACKEND),
            label=opt_str(config, "label", backend=BACKEND),
            auth_key=key,
            ca_bundle=bundle,
            timeout=float(timeout),
            retry=RetryPolicy.from_config(config, backend=BACKEND),
            revoke=revoke,
        )


def authsign_body(inner: bytes, key: Secret) -> dict[str, str]:
    """The ``/authsign`` wire body for the exact request bytes ``inner``."""
    mac = hmac.new(bytes.fromhex(key.reveal()), inner, hashlib.sha256).digest()
    return {"token": base64.b64encode(mac).decode(), "request": base64.b64encode(inner).decode()}


def envelope_result(status: int, body: Any, *, what: str) -> dict[str, Any]:
    """The ``result`` of a CFSSL ``{success, result, errors, messages}`` answer.

    Raises:
        IssuerError: ``success`` is false (with the CA's own messages) or the shape is wrong.
    """
    if not isinstance(body, dict) or not isinstance(body.get("success"), bool):
        raise IssuerError(f"{what}: HTTP {status} answer is not a CFSSL envelope", backend=BACKEND)
    if not body["success"] or status != 200:
        errors = body.get("errors")
        parts = [
            f"{e.get('message', '?')} (code {e.get('code', '?')})"
            for e in (errors if isinstance(errors, list) else [])
            if isinstance(e, dict)
        ] or [f"HTTP {status} without an error message"]
        raise IssuerError(f"{what}: CA refused: " + "; ".join(parts), backend=BACKEND)
    result = body.get("result")
    if not isinstance(result, dict):
        raise IssuerError(f"{what}: answer has no result object", backend=BACKEND)
    return result


class CfsslIssuer(Issuer):
    """Signs CSRs with a CFSSL server; the names go in ``hosts`` (they replace the CSR's)."""

    name = BACKEND
    keys: ClassVar[tuple[Key, ...]] = KEYS
    example: ClassVar[str] = (
        "backend: cfssl\nurl: https://cfssl.internal:8888\nprofile: server\n"
        "auth_key_env: CFSSL_AUTH_KEY\n"
    )
    path_keys: ClassVar[tuple[str, ...]] = paths(KEYS)

    def __init__(self, config: CfsslConfig, session: requests.Session | None = None) -> None:
        self.config = config
        self.can_revoke = config.revoke
        self._session = session or requests.Session()
        self._chain: str | None = None
        self._signer_subject: x509.Name | None = None

    def __repr__(self) -> str:
        return f"CfsslIssuer(url={self.config.url!r}, profile={self.config.profile!r})"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, state: Any = None) -> CfsslIssuer:
        return cls(CfsslConfig.parse(config))

    def _post(self, endpoint: str, body: Any, what: str) -> dict[str, Any]:
        status, answer = request_json(
            self._session,
            "POST",
            f"{self.config.url}/api/v1/cfssl/{endpoint}",
            backend=BACKEND,
            what=what,
            policy=self.config.retry,
            timeout=self.config.timeout,
            verify=self.config.ca_bundle or True,
            json_body=body,
        )
        return envelope_result(status, answer, what=what)

    def issue(self, request: IssueRequest) -> CertBundle:
        """Sign ``request.csr_pem`` for ``request.names``; validity comes from the profile.

        Raises:
            IssuerError: the CA refused (its message), was unreachable, or answered garbage.
        """
        log.debug("cfssl: validity comes from the signing profile, not the request")
        inner: dict[str, Any] = {
            "certificate_request": request.csr_pem,
            "hosts": list(request.names),
        }
        if self.config.profile:
            inner["profile"] = self.config.profile
        if self.config.label:
            inner["label"] = self.config.label
        if self.config.auth_key is not None:
            raw = json.dumps(inner).encode()
            result = self._post("authsign", authsign_body(raw, self.config.auth_key), "authsign")
        else:
            result = self._post("sign", inner, "sign")
        leaf, chain = check_certificate(
            str(result.get("certificate", "")),
            csr_pem=request.csr_pem,
            names=request.names,
            backend=BACKEND,
        )
        if not chain:
            chain = self._signer_chain(leaf)
        cert = x509.load_pem_x509_certificate(leaf.encode())
        return CertBundle(
            cert_pem=leaf,
            chain_pem=chain,
            backend=BACKEND,
            backend_id=format(cert.serial_number, "x"),
        )

    def revoke(self, cert_pem: str, backend_id: str = "") -> None:
        """Revoke the first certificate of ``cert_pem`` in the server's database (superseded).

        Raises:
            IssuerError: revocation is not enabled (``revoke: true``), the PEM holds no
                certificate, or the CA refused (its message: no database, not found...).
        """
        if not self.config.revoke:
            raise IssuerError(
                "revocation is not enabled (revoke: true needs a CA with a certificate database)",
                backend=BACKEND,
            )
        blocks = split_pem_certs(cert_pem)
        if not blocks:
            raise IssuerError("revoke: no certificate given", backend=BACKEND)
        cert = x509.load_pem_x509_certificate(blocks[0].encode())
        try:
            aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
            key_id = (aki.value.key_identifier or b"").hex()
        except x509.ExtensionNotFound:
            key_id = ""
        for attempt in dict.fromkeys((key_id, "")):  # with the key id, then (1.2.0) without
            try:
                self._post(
                    "revoke",
                    {
                        "serial": str(cert.serial_number),
                        "authority_key_id": attempt,
                        "reason": "superseded",
                    },
                    "revoke",
                )
                return
            except IssuerError as err:
                if attempt == "" or "not found" not in str(err):
                    raise

    def _signer_chain(self, leaf_pem: str) -> str:
        """The signer's certificate when it is an intermediate that issued ``leaf_pem``."""
        if self._chain is None:
            body: dict[str, str] = {}
            if self.config.profile:
                body["profile"] = self.config.profile
            if self.config.label:
                body["label"] = self.config.label
            result = self._post("info", body, "info")
            blocks = split_pem_certs(str(result.get("certificate", "")))
            if not blocks:
                raise IssuerError("info: answer holds no CA certificate", backend=BACKEND)
            signer = x509.load_pem_x509_certificate(blocks[0].encode())
            self._chain = "" if signer.issuer == signer.subject else blocks[0]
            self._signer_subject = signer.subject
        leaf = x509.load_pem_x509_certificate(leaf_pem.encode())
        if self._chain and leaf.issuer != self._signer_subject:
            log.warning("cfssl signer certificate from /info did not issue the leaf; no chain")
            return ""
        return self._chain
