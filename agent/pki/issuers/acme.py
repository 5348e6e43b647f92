"""ACME (RFC 8555) backend on certbot's ``acme`` library, answering http-01 challenges through
the caller's :class:`~agent.pki.issuers.base.ChallengePublisher`, or dns-01 challenges through
Cloudflare's DNS API (``challenge: dns-01``, keys in :mod:`agent.pki.issuers.dns01`; needed for
wildcard names, and nothing is served by the origin).

Config (the ``issuer:`` mapping)::

    backend: acme
    directory: https://acme.example/dir   # required
    email: ops@example.com                # account contact (optional)
    ca_bundle: PATH                       # TLS trust for the ACME server (default: system)
    eab_kid: KID                          # external account binding, with one of:
    eab_hmac_key_env: VAR                 #   base64url HMAC key in an environment variable
    eab_hmac_key_file: PATH               #   or in a file
    key_type: ec-p256                     # account key: ec-p256 (default), ec-p384, rsa-2048
    timeout: 120                          # seconds for validation + finalization
    retries: 3 / backoff: 1.0             # when the server is unreachable
    challenge: http-01                    # or dns-01 (with the dns_* keys)

The account key is made once per directory URL and kept through an :class:`AcmeAccountStore`
(the local state); without one it lives only as long as the issuer object.

When the directory offers ``renewalInfo`` (ACME Renewal Information, RFC 9773),
:meth:`AcmeIssuer.renewal_window` asks the CA when to renew a certificate and keeps the answer
in the state until the CA's Retry-After has passed; a new order names the certificate it
replaces. With ``revoke_replaced`` (see :meth:`Issuer.revoke`) the replaced certificate is then
revoked as well.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar, cast

import requests
from acme import challenges, errors, messages
from acme import client as acme_client
from cryptography import x509
from josepy.errors import DeserializationError
from josepy.jwk import JWK

from agent.errors import AgentError, IssuerError
from agent.pki.issuers import ari
from agent.pki.issuers.acme_account import fetch_directory, network, open_account
from agent.pki.issuers.acme_config import (
    BACKEND,
    KEYS,
    AcmeAccountStore,
    AcmeConfig,
    MemoryAccountStore,
    describe_acme_error,
    has,
)
from agent.pki.issuers.base import CertBundle, ChallengePublisher, Issuer, IssueRequest
from agent.pki.issuers.dns01 import Dns01
from agent.pki.issuers.http import (
    RetryPolicy,
    check_certificate,
    csr_names,
    with_retries,
)
from agent.pki.issuers.keys import Key, paths
from agent.pki.renewal import RenewalWindow
from agent.state.records import RenewalInfo

log = logging.getLogger(__name__)
T = TypeVar("T")


class AcmeIssuer(Issuer):
    """Issues through an ACME CA with http-01 or dns-01; revocation is signed by the account
    key."""

    name = BACKEND
    needs_http01 = True
    keys: ClassVar[tuple[Key, ...]] = KEYS
    example: ClassVar[str] = (
        "backend: acme\n"
        "directory: https://acme-v02.api.letsencrypt.org/directory\n"
        "email: ops@example.com\n"
    )
    path_keys: ClassVar[tuple[str, ...]] = paths(KEYS)
    can_revoke = True

    def __init__(self, config: AcmeConfig, store: AcmeAccountStore | None = None) -> None:
        self.config = config
        self.store: AcmeAccountStore = store if store is not None else MemoryAccountStore()
        self.dns01 = Dns01(config.dns, backend=BACKEND, retry=config.retry) if config.dns else None
        self.needs_http01 = self.dns01 is None  # dns-01 needs nothing served by the origin
        self.renewals: ari.RenewalInfoStore = (
            store if isinstance(store, ari.RenewalInfoStore) else ari.MemoryRenewalInfoStore()
        )
        self._local = threading.local()  # one protocol client per thread (nonces are not
        self._lock = threading.Lock()  # shareable); the account is made once, under the lock

    def __repr__(self) -> str:
        return f"AcmeIssuer(directory={self.config.directory!r})"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, state: Any = None) -> AcmeIssuer:
        parsed = AcmeConfig.parse(config)
        if state is not None and not isinstance(state, AcmeAccountStore):
            raise TypeError("state must implement acme_account/save_acme_account")
        if state is None:
            log.info("no state store: the ACME account key is not kept after this run")
        return cls(parsed, state)

    def close(self) -> None:
        """Close this thread's HTTP session."""
        for attr in ("client", "ari_client"):
            client: acme_client.ClientV2 | None = getattr(self._local, attr, None)
            if client is not None:
                client.net.session.close()
                setattr(self._local, attr, None)

    def _step(self, what: str, call: Callable[[], T], *, retry: bool = True) -> T:
        """Run one protocol step: retry connection failures (unless the step must not be
        repeated), map every failure to IssuerError."""
        policy = self.config.retry if retry else RetryPolicy(attempts=1)
        try:
            return with_retries(call, policy=policy, backend=BACKEND, what=what)
        except AgentError:
            raise
        except (
            errors.Error,
            messages.Error,
            requests.RequestException,
            DeserializationError,
            ValueError,
            KeyError,
            TypeError,
        ) as err:
            if isinstance(err, errors.TimeoutError):
                raise IssuerError(
                    f"{what}: no result within {self.config.timeout:g}s", backend=BACKEND
                ) from err
            hint = ""
            if isinstance(err, errors.ValidationError):
                hint = (
                    "the CA looks up the TXT record _acme-challenge.NAME at the zone's nameservers"
                    if self.dns01 is not None
                    else "the CA fetches http://NAME/.well-known/acme-challenge/TOKEN on port 80"
                )
            raise IssuerError(
                f"{what}: {describe_acme_error(err)}", backend=BACKEND, hint=hint
            ) from err

    def _connect(self) -> tuple[ari.AriClient, JWK]:
        """This thread's client and account key: fetch the directory, make sure the account
        exists (made once, kept in the store)."""
        client: ari.AriClient | None = getattr(self._local, "client", None)
        if client is not None:
            return client, self._local.jwk
        with self._lock:
            client, jwk = open_account(self.config, self.store, self._step)
        self._local.client, self._local.jwk = client, jwk
        return client, jwk

    def issue(self, request: IssueRequest) -> CertBundle:
        """Order, answer the challenges (http-01 through ``request.publisher``, or dns-01
        through Cloudflare's DNS API), finalize with our CSR.

        Raises:
            IssuerError: no publisher (http-01), names differ from the CSR, the challenge
                type is not offered (wildcards need dns-01), the DNS API refused or the
                records did not show, the CA refused or validation failed (the CA's own
                detail), timeout, unreachable.
        """
        if sorted(n.lower() for n in csr_names(request.csr_pem, backend=BACKEND)) != sorted(
            n.lower() for n in request.names
        ):
            raise IssuerError("the CSR's names differ from the names requested", backend=BACKEND)
        if self.dns01 is None and request.publisher is None:
            raise IssuerError("ACME http-01 needs a challenge publisher", backend=BACKEND)
        client, jwk = self._connect()
        order = self._step("new order", lambda: self._order(client, request))
        todo = self._challenges(order)
        if self.dns01 is not None:
            with self.dns01.names_held([name for name, _ in todo]):
                done = self._solve_dns01(client, jwk, order, todo)
        else:
            assert request.publisher is not None
            done = self._solve_http01(client, jwk, order, todo, request.publisher)
        leaf, chain = check_certificate(
            done.fullchain_pem, csr_pem=request.csr_pem, names=request.names, backend=BACKEND
        )
        return CertBundle(
            cert_pem=leaf,
            chain_pem=chain,
            backend=BACKEND,
            backend_id=str(done.body.certificate or ""),
        )

    def _challenges(
        self, order: messages.OrderResource
    ) -> list[tuple[str, messages.ChallengeBody]]:
        """The challenge of this issuer's type for each pending authorization (valid ones
        are reused), with the name it is for (``*.`` for wildcards)."""
        kind = challenges.DNS01 if self.dns01 is not None else challenges.HTTP01
        todo: list[tuple[str, messages.ChallengeBody]] = []
        for authz in order.authorizations:
            name = ("*." if authz.body.wildcard else "") + authz.body.identifier.value
            if authz.body.status == messages.STATUS_VALID:
                continue  # reused authorization
            if authz.body.status != messages.STATUS_PENDING:
                raise IssuerError(
                    f"authorization for {name} is {authz.body.status}", backend=BACKEND
                )
            chb = next((c for c in authz.body.challenges if isinstance(c.chall, kind)), None)
            if chb is None:
                raise IssuerError(
                    f"the CA offers no {self.config.challenge} challenge for {name}",
                    backend=BACKEND,
                    hint="wildcard names need dns-01" if name.startswith("*.") else "",
                )
            todo.append((name, chb))
        return todo

    def _finalize(
        self, client: ari.AriClient, order: messages.OrderResource
    ) -> messages.OrderResource:
        deadline = dt.datetime.now() + dt.timedelta(seconds=self.config.timeout)
        return self._step(
            "finalize", lambda: client.poll_and_finalize(order, deadline), retry=False
        )

    def _solve_http01(
        self,
        client: ari.AriClient,
        jwk: JWK,
        order: messages.OrderResource,
        todo: list[tuple[str, messages.ChallengeBody]],
        publisher: ChallengePublisher,
    ) -> messages.OrderResource:
        published: list[str] = []
        try:
            for name, chb in todo:
                response, validation = chb.response_and_validation(jwk)
                path = cast(challenges.HTTP01, chb.chall).path
                publisher.publish(path, validation)
                published.append(path)
                self._answer(client, chb, response, name)
            return self._finalize(client, order)
        finally:
            for path in published:
                try:
                    publisher.unpublish(path)
                except Exception as err:  # never hide the primary outcome
                    log.warning("could not remove challenge %s: %s", path, err)

    def _solve_dns01(
        self,
        client: ari.AriClient,
        jwk: JWK,
        order: messages.OrderResource,
        todo: list[tuple[str, messages.ChallengeBody]],
    ) -> messages.OrderResource:
        assert self.dns01 is not None
        answers = [(name, cast(challenges.DNS01, chb.chall).validation(jwk)) for name, chb in todo]
        records = self.dns01.present(answers) if answers else []
        try:
            for name, chb in todo:
                self._answer(client, chb, chb.response(jwk), name)
            return self._finalize(client, order)
        finally:
            self.dns01.remove(records)

    def _order(self, client: ari.AriClient, request: IssueRequest) -> messages.OrderResource:
        """A new order, naming the certificate it replaces when the CA takes ARI."""
        csr = request.csr_pem.encode()
        replaces = None
        if request.replaces_pem and has(client.directory, "renewalInfo"):
            try:
                replaces = ari.cert_id(
                    x509.load_pem_x509_certificate(request.replaces_pem.encode())
                )
            except ValueError:
                log.warning("the replaced certificate does not parse: ordering without replaces")
        try:
            return client.new_order(csr, replaces=replaces)
        except messages.Error as err:
            if replaces is None or not ari.is_replaces_refusal(err):
                raise
            log.info("the CA refused replaces=%s (%s): ordering without it", replaces, err.code)
            return client.new_order(csr)

    def renewal_window(
        self, cert_pem: str, *, now: dt.datetime, ask: bool = True
    ) -> RenewalWindow | None:
        """The CA's suggested renewal window for ``cert_pem`` (RFC 9773).

        Kept in the state until the CA's Retry-After has passed: until then no request is
        made. Then one GET (plus the directory, once per thread). ``None``: the CA offers no
        window, the certificate has expired or has no ARI id; a failure to ask is logged
        and the window known so far (or ``None``) is returned. ``ask=False`` (check mode):
        the kept window only, no request, nothing written.
        """
        try:
            cert = x509.load_pem_x509_certificate(cert_pem.encode())
        except ValueError:
            return None
        ident = ari.cert_id(cert)
        if ident is None or cert.not_valid_after_utc <= now:
            return None  # RFC 9773: never ask about an expired certificate
        kept = self.renewals.renewal_info(ident)
        if kept is not None and kept.directory_url != self.config.directory:
            kept = None
        if kept is not None and (now < kept.ask_after or not ask):
            return ari.window_of(kept)
        if not ask:
            return None
        try:
            client = self._ari_client()
            fresh = self._step(
                "renewal info",
                lambda: ari.fetch(
                    client, cert, directory_url=self.config.directory, now=now, previous=kept
                ),
                retry=False,
            )
        except IssuerError as err:
            log.warning("%s; using the renewal window known so far", err)
            return ari.window_of(kept) if kept is not None else None
        if fresh is None:  # this CA offers no renewal information: ask again later
            fresh = RenewalInfo(ident, self.config.directory, now, now + ari.DEFAULT_RETRY_AFTER)
        self.renewals.save_renewal_info(fresh)
        return ari.window_of(fresh)

    def _ari_client(self) -> acme_client.ClientV2:
        """This thread's client if it has one, else a keyless one (ARI needs no account)."""
        client: acme_client.ClientV2 | None = getattr(self._local, "client", None) or getattr(
            self._local, "ari_client", None
        )
        if client is not None:
            return client
        net = network(self.config, None)
        directory = fetch_directory(self.config, net, self._step)
        self._local.ari_client = acme_client.ClientV2(directory, net)
        return cast(acme_client.ClientV2, self._local.ari_client)

    def _answer(
        self,
        client: acme_client.ClientV2,
        chb: messages.ChallengeBody,
        response: challenges.ChallengeResponse,
        name: str,
    ) -> None:
        self._step(f"answer challenge for {name}", lambda: client.answer_challenge(chb, response))

    def revoke(self, cert_pem: str, backend_id: str = "") -> None:
        """Revoke ``cert_pem`` (reason unspecified), signed by the account key.

        Raises:
            IssuerError: not a certificate, the CA refused, or unreachable.
        """
        try:
            cert = x509.load_pem_x509_certificate(cert_pem.encode())
        except ValueError:
            raise IssuerError("revoke: not a PEM certificate", backend=BACKEND) from None
        client, _ = self._connect()
        self._step("revoke", lambda: client.revoke(cert, 0))
