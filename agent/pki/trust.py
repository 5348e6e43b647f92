"""The roots an edge trusts: what Full (strict) is judged against.

Cloudflare's edge accepts, for Full (strict), a certificate that chains to a publicly trusted CA
or to Cloudflare's own Origin CA. So by default the anchors are:

- Mozilla's set of public roots, as the ``certifi`` package ships it;
- Cloudflare's two Origin CA roots (ECC and RSA), shipped inside this package
  (``agent/pki/roots/``), which only Cloudflare's edge trusts;

plus, per issuer, the roots its config names with ``trust:`` (or that the backend knows, such
as the local CA's root). :func:`edge_trust` parses the defaults once per process and builds one
store per distinct extra PEM text, so a fleet of hosts sharing an issuer shares one store.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from dataclasses import dataclass, field
from importlib import resources

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import Store

from agent.pki.inspect import load_certificates

log = logging.getLogger(__name__)

ORIGIN_CA_FILES = ("cloudflare-origin-ca-ecc-root.pem", "cloudflare-origin-ca-rsa-root.pem")
"""Cloudflare's Origin CA roots, package data of ``agent.pki`` under ``roots/``."""

_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def _fingerprint(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


@dataclass(frozen=True, eq=False)
class TrustStore:
    """Parsed trust anchors (each once, by SHA-256 fingerprint) and the verifier store built
    from them; immutable, so one store serves every thread.

    ``sources`` says where the anchors came from, one short phrase each, for messages.
    """

    anchors: tuple[x509.Certificate, ...]
    sources: tuple[str, ...] = ()
    _store: Store | None = field(init=False, repr=False)
    _fingerprints: frozenset[bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        unique: dict[bytes, x509.Certificate] = {}
        for cert in self.anchors:
            unique.setdefault(_fingerprint(cert), cert)
        kept = tuple(unique.values())
        object.__setattr__(self, "anchors", kept)
        object.__setattr__(self, "_fingerprints", frozenset(unique))
        object.__setattr__(self, "_store", Store(list(kept)) if kept else None)

    @classmethod
    def from_pem(cls, pem: str, *, where: str = "trust anchors") -> TrustStore:
        """Only the anchors in ``pem`` (no defaults); empty text gives an empty store.

        Raises:
            PemError: text that holds no certificate, or one that does not parse.
        """
        if not pem.strip():
            return cls(())
        certs = tuple(load_certificates(pem, where=where))
        return cls(certs, (f"{where}: {len(certs)}",))

    @property
    def store(self) -> Store | None:
        """The ``cryptography`` verifier store (``None`` when there is no anchor)."""
        return self._store

    def __len__(self) -> int:
        return len(self.anchors)

    def __contains__(self, cert: object) -> bool:
        return isinstance(cert, x509.Certificate) and _fingerprint(cert) in self._fingerprints

    def plus(self, other: TrustStore) -> TrustStore:
        """This store and ``other`` together."""
        if not other.anchors:
            return self
        return TrustStore(self.anchors + other.anchors, self.sources + other.sources)

    def describe(self) -> str:
        """One line: where the anchors came from."""
        return "; ".join(self.sources) or "no trust anchors"


def parse_bundle(data: bytes) -> tuple[tuple[x509.Certificate, ...], int]:
    """Every certificate of a CA bundle, and how many blocks were skipped as unparsable.

    Mozilla's set holds roots with a zero serial number (GoDaddy and Starfield G2 among them),
    which ``cryptography`` accepts with a deprecation warning today: they are kept, the warning
    is not shown; should a later release refuse them, they are skipped and logged.
    """
    certs: list[x509.Certificate] = []
    skipped = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        for block in _BLOCK.findall(data):
            try:
                cert = x509.load_pem_x509_certificate(block)
                cert.public_key()
                _ = cert.subject, cert.extensions
            except Exception as err:  # a root we cannot parse cannot anchor anything either
                skipped += 1
                log.debug("skipped a CA bundle entry: %s", err)
                continue
            certs.append(cert)
    return tuple(certs), skipped


def public_roots() -> tuple[tuple[x509.Certificate, ...], str]:
    """Mozilla's roots as ``certifi`` ships them, and a phrase naming the source."""
    import certifi

    path = certifi.where()
    with open(path, "rb") as handle:
        certs, skipped = parse_bundle(handle.read())
    if skipped:
        log.warning("%s: %d of the bundle's certificates did not parse", path, skipped)
    version = getattr(certifi, "__version__", "?")
    return certs, f"public CAs (certifi {version}): {len(certs)}"


def origin_ca_roots() -> tuple[x509.Certificate, ...]:
    """Cloudflare's Origin CA roots (ECC, RSA) from this package's data."""
    folder = resources.files("agent.pki").joinpath("roots")
    certs: list[x509.Certificate] = []
    for name in ORIGIN_CA_FILES:
        certs += load_certificates(folder.joinpath(name).read_bytes(), where=f"agent/pki/{name}")
    return tuple(certs)


_lock = threading.Lock()
_default: TrustStore | None = None
_with_extra: dict[str, TrustStore] = {}
_MAX_EXTRA = 64  # distinct extra texts kept (one per issuer config in practice)


def default_trust() -> TrustStore:
    """The edge's own anchors (public CAs and Cloudflare's Origin CA), parsed once."""
    global _default
    with _lock:
        if _default is None:
            public, source = public_roots()
            origin = origin_ca_roots()
            _default = TrustStore(public + origin, (source, f"Cloudflare Origin CA: {len(origin)}"))
        return _default


def edge_trust(extra_pem: str = "", *, where: str = "trust anchors") -> TrustStore:
    """The edge's default anchors plus the certificates in ``extra_pem`` (an issuer's root, a
    ``trust:`` file, ``--trust`` bundles), built once per distinct text.

    Raises:
        PemError: ``extra_pem`` is not empty but holds no certificate, or one that does not parse.
    """
    base = default_trust()
    if not extra_pem.strip():
        return base
    with _lock:
        found = _with_extra.get(extra_pem)
    if found is not None:
        return found
    combined = base.plus(TrustStore.from_pem(extra_pem, where=where))
    with _lock:
        if len(_with_extra) >= _MAX_EXTRA:
            _with_extra.clear()
        return _with_extra.setdefault(extra_pem, combined)
