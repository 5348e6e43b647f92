"""The one small interface every certificate authority backend implements.

An issuer gets a CSR (never the private key; only ``selfsigned`` is handed the key) and the
names asked for, and returns a :class:`CertBundle`. It knows nothing of SSH or web servers: the
ACME backend publishes http-01 challenges through a :class:`ChallengePublisher` callback that the
caller implements over its transport.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from agent.pki.issuers.keys import Key
from agent.pki.renewal import RenewalWindow
from agent.registry import Loader, lazy


@dataclass(frozen=True)
class CertBundle:
    """What a CA returned: the leaf, the intermediates (leaf's issuer first), and the backend's
    own id for the certificate (for revocation), all PEM text."""

    cert_pem: str
    chain_pem: str = ""
    backend: str = ""
    backend_id: str = ""

    @property
    def fullchain_pem(self) -> str:
        chain = self.chain_pem.strip()
        return self.cert_pem.strip() + "\n" + (chain + "\n" if chain else "")


class ChallengePublisher(Protocol):
    """Puts an ACME http-01 response where the CA will fetch it, and takes it away again."""

    def publish(self, path: str, content: str) -> None:
        """``path`` is the URL path, e.g. ``/.well-known/acme-challenge/TOKEN``."""
        ...

    def unpublish(self, path: str) -> None: ...


DEFAULT_VALIDITY = timedelta(days=90)
"""The lifetime the backends that choose it themselves (selfsigned, localca) give a
certificate when the request names none."""


@dataclass(frozen=True)
class IssueRequest:
    """One certificate to issue. ``validity`` is the lifetime the user asked for; ``None``
    leaves it to the backend (:data:`DEFAULT_VALIDITY` for selfsigned and localca, 5475 days,
    Cloudflare's own default, for the Origin CA; ACME and cfssl CAs always decide)."""

    csr_pem: str
    names: tuple[str, ...]
    validity: timedelta | None = None
    publisher: ChallengePublisher | None = None
    key_pem: str | None = field(default=None, repr=False)  # only for selfsigned
    replaces_pem: str = ""  # the certificate this one replaces, or its fullchain (ACME sends
    # its ARI id as ``replaces``)


class Issuer(abc.ABC):
    """A certificate authority backend.

    Subclasses set ``name`` and are built from the ``issuer:`` mapping of inventory vars with
    :meth:`from_config`, which validates it and reads secrets from the environment or files.
    """

    name: ClassVar[str]
    can_revoke: bool = False  # a class default; an instance may decide from its config
    #: The CA validates names over HTTP on the origin (ACME http-01): the origin must serve
    #: ``/.well-known/acme-challenge/`` from its webroot before ordering.
    needs_http01: bool = False
    #: The backend signs with the private key itself (a self-signed certificate), so it is
    #: handed the key; every other backend gets the CSR only.
    signs_with_key: ClassVar[bool] = False
    #: The keys of the ``issuer:`` mapping besides ``backend`` (validated by
    #: :meth:`from_config`, printed by ``origin-agent doc``).
    keys: ClassVar[tuple[Key, ...]] = ()
    #: An ``issuer:`` mapping for this backend, as YAML (``origin-agent doc`` prints it; a
    #: unit test holds it to ``keys``).
    example: ClassVar[str] = ""
    #: Config keys that name files on the controller; relative ones are resolved against the
    #: inventory's directory before the issuer is built (and before its id is computed).
    path_keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: Mapping[str, Any], *, state: Any = None) -> Issuer:
        """Build the issuer from its config mapping.

        Raises:
            IssuerError: unknown or missing key, unreadable secret.
        """

    @abc.abstractmethod
    def issue(self, request: IssueRequest) -> CertBundle:
        """Issue a certificate for ``request.csr_pem``.

        Raises:
            IssuerError: the CA refused (with its own message), was unreachable after retries,
                or answered something that is not a certificate.
        """

    def trust_anchors_pem(self) -> str:
        """PEM of the root(s) an edge must trust for this CA's certificates ("" if unknown:
        then the ``trust:`` file of the issuer config says)."""
        return ""

    def renewal_window(
        self, cert_pem: str, *, now: datetime, ask: bool = True
    ) -> RenewalWindow | None:
        """The window in which the CA suggests renewing ``cert_pem`` (ACME ARI, RFC 9773), or
        ``None`` when the backend or CA suggests none (the default renewal rule applies).
        ``cert_pem`` may be the fullchain (its first block is the leaf).

        ``ask=False`` (check mode) only reads what the local state kept: no request to the CA,
        nothing written. Never raises for what the CA does: a failure to ask is logged and
        the window known so far (or ``None``) is returned."""
        return None

    def revoke(self, cert_pem: str, backend_id: str = "") -> None:
        """Revoke a certificate this backend issued.

        Replacement policy (``revoke_replaced`` of ``tls_origin``, on unless ``rotate
        --no-revoke``): once the new certificate is live, the one it replaced is revoked where
        its own backend can (``can_revoke``); a refusal is reported, never fatal. What each
        backend does: ``acme`` names the old certificate in the new order (``replaces``, when
        the CA offers ARI) and then revokes it, signed by the account key; ``cloudflare``
        DELETEs it from the Origin CA (by its id, else its serial number); ``cfssl`` revokes it
        in the server's certificate database (reason superseded; needs ``revoke: true`` and a
        CA with a database); ``localca`` adds it to ``revoked.txt`` and its CRL; ``selfsigned``
        does nothing (``can_revoke`` is false: there is no CA to tell).

        Raises:
            IssuerError: the backend cannot revoke, or the CA refused.
        """
        from agent.errors import IssuerError

        raise IssuerError("this backend cannot revoke certificates", backend=self.name)


REGISTRY: dict[str, Loader] = {
    "selfsigned": lazy("agent.pki.issuers.selfsigned:SelfSignedIssuer"),
    "localca": lazy("agent.pki.issuers.localca:LocalCAIssuer"),
    "acme": lazy("agent.pki.issuers.acme:AcmeIssuer"),
    "cfssl": lazy("agent.pki.issuers.cfssl:CfsslIssuer"),
    "cloudflare": lazy("agent.pki.issuers.cloudflare:CloudflareIssuer"),
}
"""Backend name -> loader of its class (:mod:`agent.registry`'s pattern, lazy, so a backend's
imports cost nothing unused)."""
