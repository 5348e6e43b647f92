"""Reaching an ACME CA as an account: the signed network client, the directory, and the
account, made once per directory URL and kept through an
:class:`~agent.pki.issuers.acme_config.AcmeAccountStore` (see :mod:`agent.pki.issuers.acme`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from acme import client as acme_client
from acme import errors, messages
from cryptography.hazmat.primitives import serialization
from josepy.jwk import JWK

from agent.errors import IssuerError
from agent.pki.issuers import ari
from agent.pki.issuers.acme_config import (
    BACKEND,
    AcmeAccountStore,
    AcmeConfig,
    has,
    jws_alg,
    load_account_key,
    new_account_key,
)
from agent.secret import Secret
from agent.state.records import AcmeAccount

T = TypeVar("T")


class Step(Protocol):
    """Runs one protocol step, retrying and mapping failures to IssuerError (the issuer's)."""

    def __call__(self, what: str, call: Callable[[], T], *, retry: bool = True) -> T: ...


def network(config: AcmeConfig, jwk: JWK | None) -> acme_client.ClientNetwork:
    """The HTTP side of the protocol; without ``jwk`` it can only make unsigned requests."""
    signed: dict[str, Any] = {"alg": jws_alg(jwk)} if jwk is not None else {}
    return acme_client.ClientNetwork(
        jwk,
        verify_ssl=cast(bool, config.ca_bundle or True),
        user_agent="origin-agent",
        timeout=int(min(config.timeout, 60)),
        **signed,
    )


def fetch_directory(
    config: AcmeConfig, net: acme_client.ClientNetwork, step: Step
) -> messages.Directory:
    """The CA's directory, fetched as the ``directory`` step."""
    return step("directory", lambda: acme_client.ClientV2.get_directory(config.directory, net))


def open_account(
    config: AcmeConfig, store: AcmeAccountStore, step: Step
) -> tuple[ari.AriClient, JWK]:
    """A client signed by the account key: the stored account for this directory, or a new
    one registered now (an existing account for the key is taken over) and saved.

    Raises:
        IssuerError: the directory is not an ACME directory, or a step failed.
    """
    stored = store.acme_account(config.directory)
    jwk = (
        load_account_key(stored.account_key.reveal())
        if stored
        else new_account_key(config.key_type)
    )
    net = network(config, jwk)
    directory = fetch_directory(config, net, step)
    missing = [k for k in ("newNonce", "newAccount", "newOrder") if not has(directory, k)]
    if missing:
        raise IssuerError(
            f"directory: {config.directory} is not an ACME directory (no {', '.join(missing)})",
            backend=BACKEND,
        )
    client = ari.AriClient(directory, net)
    registration = _registration(config, jwk, directory)
    url = step("account", lambda: _register(client, net, registration))
    if stored is None or stored.account_url != url:
        _keep_account(config, store, jwk, url)
    return client, jwk


def _registration(
    config: AcmeConfig, jwk: JWK, directory: messages.Directory
) -> messages.NewRegistration:
    eab = None
    if config.eab_hmac_key is not None:
        eab = messages.ExternalAccountBinding.from_data(
            account_public_key=jwk.public_key(),
            kid=config.eab_kid,
            hmac_key=config.eab_hmac_key.reveal(),
            directory=directory,
        )
    return messages.NewRegistration.from_data(
        email=config.email or None,
        terms_of_service_agreed=True,
        external_account_binding=eab,
    )


def _register(
    client: ari.AriClient,
    net: acme_client.ClientNetwork,
    registration: messages.NewRegistration,
) -> str:
    """The account URL: a new account, or the one this key already has."""
    try:
        return str(client.new_account(registration).uri)
    except errors.ConflictError as existing:  # this key already has an account
        url = str(existing.location)
        net.account = messages.RegistrationResource(body=messages.Registration(), uri=url)
        return url


def _keep_account(config: AcmeConfig, store: AcmeAccountStore, jwk: JWK, url: str) -> None:
    key_pem = (
        cast(Any, jwk.key)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    store.save_acme_account(
        AcmeAccount(
            directory_url=config.directory,
            account_key=Secret(key_pem),
            account_url=url,
            created_at=dt.datetime.now(dt.UTC),
            email=config.email,
        )
    )
