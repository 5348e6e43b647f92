"""The ``selfsigned`` backend: a certificate signed by its own key (enough for "Full").

Unlike every other backend it is handed the private key (``IssueRequest.key_pem``), because the
certificate must be signed with it. Config: ``issuer: {backend: selfsigned}``. Nothing revokes a
self-signed certificate (``can_revoke`` is false; see :meth:`Issuer.revoke`'s policy): a replaced
one is simply no longer served.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from agent.errors import IssuerError, ValidationError
from agent.pki.csr import load_csr, normalize_names
from agent.pki.issuers.base import DEFAULT_VALIDITY, CertBundle, Issuer, IssueRequest
from agent.pki.issuers.keys import Key, names
from agent.pki.keys import PrivateKey
from agent.pki.pins import spki_der
from agent.pki.sign import build_leaf, to_pem

KEYS: tuple[Key, ...] = ()
"""A ``selfsigned`` issuer mapping has no key besides ``backend``."""
_KEYS = ("backend", *names(KEYS))


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SelfSignedIssuer(Issuer):
    """Signs each certificate with the key it certifies."""

    name: ClassVar[str] = "selfsigned"
    signs_with_key: ClassVar[bool] = True
    keys: ClassVar[tuple[Key, ...]] = KEYS
    example: ClassVar[str] = "backend: selfsigned\n"

    def __init__(self, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._clock = clock

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, state: Any = None) -> SelfSignedIssuer:
        """Build from ``{backend: selfsigned}``.

        Raises:
            IssuerError: an unknown key.
        """
        unknown = sorted(str(k) for k in config if k not in _KEYS)
        if unknown:
            raise IssuerError(
                f"unknown key {unknown[0]!r}",
                backend=cls.name,
                hint=f"accepted keys: {', '.join(_KEYS)}",
            )
        return cls()

    def issue(self, request: IssueRequest) -> CertBundle:
        """Sign a certificate for ``request.names`` with ``request.key_pem``.

        Raises:
            IssuerError: no key given, key and CSR differ, or a name is invalid.
        """
        if not request.key_pem:
            raise IssuerError("needs the private key (IssueRequest.key_pem)", backend=self.name)
        try:
            key = PrivateKey.from_pem(request.key_pem)
            csr = load_csr(request.csr_pem)
            names = normalize_names(request.names)
        except ValidationError as err:
            raise IssuerError(err.message, backend=self.name) from err
        if spki_der(key) != spki_der(csr):
            raise IssuerError("the key given is not the CSR's key", backend=self.name)
        cert = build_leaf(
            public_key=key.public_key(),
            names=names,
            issuer_key=key,
            issuer_cert=None,
            now=self._clock(),
            validity=request.validity or DEFAULT_VALIDITY,
        )
        return CertBundle(
            cert_pem=to_pem(cert),
            chain_pem="",
            backend=self.name,
            backend_id=format(cert.serial_number, "x"),
        )
