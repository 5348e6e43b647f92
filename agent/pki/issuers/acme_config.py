"""The ``acme`` issuer's settings, account keys and how its errors read (see
:mod:`agent.pki.issuers.acme` for the config keys)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast, runtime_checkable

import requests
from acme import errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.errors import DeserializationError
from josepy.jwa import ES256, ES384, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA

from agent.errors import IssuerError
from agent.pki.issuers.dns01 import KEYS as DNS_KEYS
from agent.pki.issuers.dns01 import Dns01Config
from agent.pki.issuers.http import (
    RetryPolicy,
    check_file,
    check_keys,
    check_url,
    load_secret,
    opt_str,
    snippet,
)
from agent.pki.issuers.keys import RETRY_KEYS, Key, default, names, required
from agent.secret import Secret
from agent.state.records import AcmeAccount

BACKEND = "acme"
CHALLENGES = ("http-01", "dns-01")
KeyType = Literal["ec-p256", "ec-p384", "rsa-2048"]
KEY_TYPES: tuple[KeyType, ...] = ("ec-p256", "ec-p384", "rsa-2048")
KEYS = (
    Key("directory", "url", required=True, help="the CA's ACME directory URL"),
    Key("email", help="account contact address"),
    Key("ca_bundle", "file", help="TLS trust for the ACME server (default: system)"),
    Key("eab_kid", help="external account binding key id, with an EAB HMAC key"),
    Key("eab_hmac_key_env", "env", help="the base64url EAB HMAC key"),
    Key("eab_hmac_key_file", "file", help="or that key in a file"),
    Key("key_type", default="ec-p256", choices=KEY_TYPES, help="the account key's type"),
    Key("timeout", "number", 120, help="seconds for validation and finalization"),
    *RETRY_KEYS,
    Key(
        "challenge",
        default="http-01",
        choices=CHALLENGES,
        help="http-01 through the origin's webroot, or dns-01 through Cloudflare's DNS API "
        "(wildcard names; with the dns_* keys)",
    ),
    *DNS_KEYS,
)
"""Every key of an ``acme`` issuer mapping (the one list its validation and docs use)."""
ACCEPTED = names(KEYS)


@runtime_checkable
class AcmeAccountStore(Protocol):
    """What this backend needs from the local state (:class:`agent.state.store.Store` has it):
    one account per directory URL."""

    def acme_account(self, directory_url: str) -> AcmeAccount | None:
        """The account saved for ``directory_url``, or None."""
        ...

    def save_acme_account(self, account: AcmeAccount) -> None:
        """Keep (or replace) the account; the store keeps the key private (0600)."""
        ...


class MemoryAccountStore:
    """An :class:`AcmeAccountStore` in memory (tests, or no state configured)."""

    def __init__(self) -> None:
        self._accounts: dict[str, AcmeAccount] = {}

    def acme_account(self, directory_url: str) -> AcmeAccount | None:
        return self._accounts.get(directory_url)

    def save_acme_account(self, account: AcmeAccount) -> None:
        self._accounts[account.directory_url] = account


@dataclass(frozen=True)
class AcmeConfig:
    """Validated ACME settings."""

    directory: str
    email: str = ""
    ca_bundle: str | None = None
    eab_kid: str = ""
    eab_hmac_key: Secret | None = field(default=None, repr=False)
    key_type: KeyType = "ec-p256"
    timeout: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    challenge: Literal["http-01", "dns-01"] = "http-01"
    dns: Dns01Config | None = None  # with challenge dns-01

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> AcmeConfig:
        """Validate an ``issuer:`` mapping.

        Raises:
            IssuerError: unknown/missing key, inline secret, bad URL or value, unreadable file.
        """
        check_keys(config, backend=BACKEND, accepted=ACCEPTED, required=required(KEYS))
        directory = check_url(
            opt_str(config, "directory", backend=BACKEND), key="directory", backend=BACKEND
        )
        email = opt_str(config, "email", backend=BACKEND)
        if email and ("@" not in email or " " in email or "," in email):
            raise IssuerError(f"email {email!r} is not an e-mail address", backend=BACKEND)
        bundle = opt_str(config, "ca_bundle", backend=BACKEND) or None
        if bundle:
            check_file(bundle, key="ca_bundle", backend=BACKEND)
        kid = opt_str(config, "eab_kid", backend=BACKEND)
        hmac_key = load_secret(
            config,
            backend=BACKEND,
            env_key="eab_hmac_key_env",
            file_key="eab_hmac_key_file",
            what="EAB HMAC key",
        )
        if bool(kid) != (hmac_key is not None):
            raise IssuerError(
                "external account binding needs both eab_kid and an EAB HMAC key", backend=BACKEND
            )
        key_type = opt_str(config, "key_type", backend=BACKEND, default=default(KEYS, "key_type"))
        if key_type not in KEY_TYPES:
            raise IssuerError(
                f"key_type {key_type!r} is not one of " + ", ".join(KEY_TYPES), backend=BACKEND
            )
        timeout = config.get("timeout", default(KEYS, "timeout"))
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout:
            raise IssuerError("timeout must be a positive number of seconds", backend=BACKEND)
        challenge = opt_str(
            config, "challenge", backend=BACKEND, default=default(KEYS, "challenge")
        )
        if challenge not in CHALLENGES:
            raise IssuerError(
                f"challenge {challenge!r} is not one of " + ", ".join(CHALLENGES), backend=BACKEND
            )
        dns_given = sorted(k for k in names(DNS_KEYS) if k in config)
        if challenge != "dns-01" and dns_given:
            raise IssuerError(
                f"{', '.join(dns_given)} only apply with challenge: dns-01", backend=BACKEND
            )
        return cls(
            directory=directory,
            email=email,
            ca_bundle=bundle,
            eab_kid=kid,
            eab_hmac_key=hmac_key,
            key_type=key_type,
            timeout=float(timeout),
            retry=RetryPolicy.from_config(config, backend=BACKEND),
            challenge="dns-01" if challenge == "dns-01" else "http-01",
            dns=Dns01Config.parse(config, backend=BACKEND) if challenge == "dns-01" else None,
        )


def new_account_key(key_type: KeyType) -> JWK:
    """A fresh account key."""
    if key_type == "rsa-2048":
        return JWKRSA(key=rsa.generate_private_key(65537, 2048))
    curve = ec.SECP384R1() if key_type == "ec-p384" else ec.SECP256R1()
    return JWKEC(key=ec.generate_private_key(curve))


def jws_alg(jwk: JWK) -> JWASignature:
    if isinstance(jwk, JWKRSA):
        return RS256
    key = cast(ec.EllipticCurvePrivateKey, jwk.key)
    return ES384 if key.curve.name == "secp384r1" else ES256


def load_account_key(key_pem: str) -> JWK:
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise IssuerError(
            "the stored ACME account key is unreadable",
            backend=BACKEND,
            hint="remove the account from the state to register a new one",
        ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        return JWKRSA(key=key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return JWKEC(key=key)
    raise IssuerError("the stored ACME account key is neither RSA nor EC", backend=BACKEND)


def has(directory: messages.Directory, key: str) -> bool:
    try:
        directory[key]
    except KeyError:
        return False
    return True


def describe_acme_error(err: Exception) -> str:
    """One line for what went wrong, from the CA's own problem documents where present."""
    if isinstance(err, messages.Error):
        kind = (err.typ or "").rsplit(":", 1)[-1]
        text = err.detail or err.description or kind or "error"
        return f"{text} ({kind})" if kind and kind not in text else text
    if isinstance(err, errors.ValidationError):
        parts = []
        for authzr in err.failed_authzrs:
            for chall in authzr.body.challenges:
                if chall.error is not None:
                    parts.append(
                        f"{authzr.body.identifier.value}: {describe_acme_error(chall.error)}"
                    )
        return "challenge validation failed: " + ("; ".join(parts) or "authorization invalid")
    if isinstance(err, errors.IssuanceError):
        return "issuance failed: " + describe_acme_error(err.error)
    if isinstance(err, errors.ClientError) and err.args:
        first = err.args[0]
        resp = first[0] if isinstance(first, tuple) and first else first
        if isinstance(resp, requests.Response):
            return f"unexpected HTTP {resp.status_code} answer: {snippet(resp.content)!r}"
    if isinstance(err, requests.exceptions.JSONDecodeError | DeserializationError | TypeError):
        return f"malformed answer ({snippet(str(err))})"
    return snippet(str(err), 200) or type(err).__name__
