"""The ``localca`` backend: a private origin CA kept in a directory on the controller.

``origin-agent ca init DIR`` (:func:`init_ca`) makes a root and optionally an intermediate;
config ``issuer: {backend: localca, dir: ./ca}`` then signs CSRs with the intermediate if there
is one, else with the root. The edge must trust ``DIR/root.pem``. With an intermediate, the root
key is not needed to issue and may be moved offline.

Layout of DIR (0700): ``root.pem``, ``root.key`` (0600), optionally ``intermediate.pem`` and
``intermediate.key`` (0600), ``revoked.txt`` (one ``<serial hex> <revoked at>`` per line) and
``crl.pem`` (a CRL of the issuing CA, rewritten on each revocation).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from agent.errors import IssuerError, ValidationError
from agent.pki.csr import load_csr, normalize_names
from agent.pki.inspect import PemError, issued_by, load_certificate
from agent.pki.issuers.base import DEFAULT_VALIDITY, CertBundle, Issuer, IssueRequest
from agent.pki.issuers.keys import Key, names, paths
from agent.pki.keys import (
    DEFAULT_KEY_TYPE,
    KeyType,
    PrivateKey,
    check_key_type,
    signature_hash,
    write_key_file,
)
from agent.pki.pins import spki_pin
from agent.pki.sign import build_ca, build_leaf, to_pem

BACKEND = "localca"
DEFAULT_CA_NAME = "origin-agent local CA"
DEFAULT_CA_DAYS = 3650
CRL_DAYS = 7
KEYS = (
    Key(
        "dir",
        "directory",
        required=True,
        help="the CA directory made by 'origin-agent ca init DIR' (on the controller)",
    ),
)
"""Every key of a ``localca`` issuer mapping (the one list its validation and docs use)."""
_KEYS = ("backend", *names(KEYS))


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CAPaths:
    """Where the files of a local CA live."""

    dir: Path

    @property
    def root_cert(self) -> Path:
        return self.dir / "root.pem"

    @property
    def root_key(self) -> Path:
        return self.dir / "root.key"

    @property
    def intermediate_cert(self) -> Path:
        return self.dir / "intermediate.pem"

    @property
    def intermediate_key(self) -> Path:
        return self.dir / "intermediate.key"

    @property
    def revoked(self) -> Path:
        return self.dir / "revoked.txt"

    @property
    def crl(self) -> Path:
        return self.dir / "crl.pem"

    @property
    def lock(self) -> Path:
        return self.dir / ".lock"

    def existing(self) -> list[Path]:
        """CA files already present (a CA there must not be overwritten)."""
        files = (self.root_cert, self.root_key, self.intermediate_cert, self.intermediate_key)
        return [p for p in files if p.exists() or p.is_symlink()]


def _write_public(path: Path, text: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)


def init_ca(
    directory: str | os.PathLike[str],
    *,
    intermediate: bool = False,
    key_type: str = DEFAULT_KEY_TYPE,
    name: str = DEFAULT_CA_NAME,
    days: int = DEFAULT_CA_DAYS,
    now: datetime | None = None,
) -> CAPaths:
    """Make a root CA (and an intermediate) in ``directory``; return its paths.

    Raises:
        IssuerError: ``directory`` already holds a CA (it is never overwritten), or cannot be
            created; a bad key type, name or validity.
    """
    paths = CAPaths(Path(directory))
    kind = _checked_request(key_type, name, days)
    _make_empty_dir(paths)
    _write_ca(paths, kind, name, now or _utcnow(), timedelta(days=days), intermediate)
    return paths


def _checked_request(key_type: str, name: str, days: int) -> KeyType:
    """The key kind for ``key_type``, once the name and validity are known to be sound."""
    try:
        kind = check_key_type(key_type, where="--key-type")
    except ValidationError as err:
        raise IssuerError(str(err), backend=BACKEND) from err
    if not name.strip() or len(name) > 64 or any(ord(c) < 32 for c in name):
        raise IssuerError(f"invalid CA name {name!r} (1-64 printable characters)", backend=BACKEND)
    if days < 1:
        raise IssuerError(f"invalid validity {days} days (must be at least 1)", backend=BACKEND)
    return kind


def _make_empty_dir(paths: CAPaths) -> None:
    """Create the CA directory (0700), refusing one that already holds a CA."""
    found = paths.existing()
    if found:
        raise IssuerError(
            f"{paths.dir} already holds a CA ({found[0].name}); refusing to overwrite it",
            backend=BACKEND,
            hint="choose another directory",
        )
    try:
        paths.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise IssuerError(f"cannot create {paths.dir}: {err.strerror}", backend=BACKEND) from err


def _write_ca(
    paths: CAPaths,
    kind: KeyType,
    name: str,
    now: datetime,
    validity: timedelta,
    intermediate: bool,
) -> None:
    """Generate the root (and the intermediate it signs) and write keys and certificates."""
    root_key = PrivateKey.generate(kind)
    root = build_ca(
        key=root_key,
        common_name=name,
        now=now,
        validity=validity,
        path_length=0 if not intermediate else 1,
    )
    try:
        write_key_file(paths.root_key, root_key.pem())
        _write_public(paths.root_cert, to_pem(root))
        if intermediate:
            int_key = PrivateKey.generate(kind)
            inter = build_ca(
                key=int_key,
                common_name=f"{name[:51]} intermediate",
                now=now,
                validity=validity,
                issuer_key=root_key,
                issuer_cert=root,
                path_length=0,
            )
            write_key_file(paths.intermediate_key, int_key.pem())
            _write_public(paths.intermediate_cert, to_pem(inter))
    except (OSError, ValidationError) as err:
        raise IssuerError(f"cannot write the CA in {paths.dir}: {err}", backend=BACKEND) from err


def _load_key(path: Path) -> PrivateKey:
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise IssuerError(
                f"CA key {path} is readable by others (mode {mode:04o})",
                backend=BACKEND,
                hint=f"chmod 600 {path}",
            )
        data = path.read_bytes()
    except OSError as err:
        raise IssuerError(f"cannot read CA key {path}: {err.strerror}", backend=BACKEND) from err
    try:
        return PrivateKey.from_pem(data, where=str(path))
    except ValidationError as err:
        raise IssuerError(str(err), backend=BACKEND) from err


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return load_certificate(path.read_bytes(), where=str(path))
    except OSError as err:
        raise IssuerError(f"cannot read {path}: {err.strerror}", backend=BACKEND) from err
    except PemError as err:
        raise IssuerError(str(err), backend=BACKEND) from err


class LocalCAIssuer(Issuer):
    """Signs CSRs with a local CA made by :func:`init_ca` (``origin-agent ca init DIR``)."""

    name: ClassVar[str] = BACKEND
    keys: ClassVar[tuple[Key, ...]] = KEYS
    example: ClassVar[str] = "backend: localca\ndir: ./ca\n"
    path_keys: ClassVar[tuple[str, ...]] = paths(KEYS)
    can_revoke = True

    def __init__(
        self, directory: str | os.PathLike[str], *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        """Load the CA in ``directory``.

        Raises:
            IssuerError: no CA there, unreadable files, or a key readable by others.
        """
        self.paths = CAPaths(Path(directory))
        self._clock = clock
        self._lock = threading.Lock()
        if not self.paths.root_cert.is_file():
            raise IssuerError(
                f"no CA in {self.paths.dir} (missing root.pem)",
                backend=BACKEND,
                hint=f"run 'origin-agent ca init {self.paths.dir}'",
            )
        self.root = _load_cert(self.paths.root_cert)
        if self.paths.intermediate_cert.is_file():
            self.chain: tuple[x509.Certificate, ...] = (_load_cert(self.paths.intermediate_cert),)
            self._key = _load_key(self.paths.intermediate_key)
        else:
            self.chain = ()
            self._key = _load_key(self.paths.root_key)
        self.issuing_cert = self.chain[0] if self.chain else self.root
        if self._key.pin != spki_pin(self.issuing_cert):
            raise IssuerError(
                f"CA key in {self.paths.dir} does not match its certificate", backend=BACKEND
            )

    def trust_anchors_pem(self) -> str:
        """The root certificate: what an edge is told to trust."""
        return self.root.public_bytes(serialization.Encoding.PEM).decode()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, state: Any = None) -> LocalCAIssuer:
        """Build from ``{backend: localca, dir: ./ca}``.

        Raises:
            IssuerError: unknown or missing key, or no usable CA in ``dir``.
        """
        unknown = sorted(str(k) for k in config if k not in _KEYS)
        if unknown:
            raise IssuerError(
                f"unknown key {unknown[0]!r}",
                backend=BACKEND,
                hint=f"accepted keys: {', '.join(_KEYS)}",
            )
        directory = config.get("dir")
        if not isinstance(directory, str) or not directory.strip():
            raise IssuerError(
                "missing 'dir' (the CA directory)",
                backend=BACKEND,
                hint="run 'origin-agent ca init DIR' and set dir: DIR",
            )
        return cls(os.path.expanduser(directory))

    def issue(self, request: IssueRequest) -> CertBundle:
        """Sign ``request.csr_pem`` for ``request.names`` (serverAuth, SANs from the names).

        Raises:
            IssuerError: the CSR does not parse or verify, or a name is invalid.
        """
        try:
            csr = load_csr(request.csr_pem)
            names = normalize_names(request.names)
        except ValidationError as err:
            raise IssuerError(err.message, backend=BACKEND) from err
        cert = build_leaf(
            public_key=csr.public_key(),  # type: ignore[arg-type]
            names=names,
            issuer_key=self._key,
            issuer_cert=self.issuing_cert,
            now=self._clock(),
            validity=request.validity or DEFAULT_VALIDITY,
        )
        return CertBundle(
            cert_pem=to_pem(cert),
            chain_pem="".join(to_pem(c) for c in self.chain),
            backend=BACKEND,
            backend_id=format(cert.serial_number, "x"),
        )

    def revoke(self, cert_pem: str, backend_id: str = "") -> None:
        """Record ``cert_pem`` as revoked in ``revoked.txt`` and rewrite ``crl.pem``.

        Revoking twice is harmless.

        Raises:
            IssuerError: not a certificate, or not one this CA issued.
        """
        try:
            cert = load_certificate(cert_pem)
        except PemError as err:
            raise IssuerError("revoke: not a PEM certificate", backend=BACKEND) from err
        if not issued_by(cert, self.issuing_cert):
            raise IssuerError("revoke: certificate was not issued by this CA", backend=BACKEND)
        now = self._clock()
        with self._locked():
            entries = self._read_revoked()
            serial = format(cert.serial_number, "x")
            if serial not in entries:
                entries[serial] = now
                text = "".join(f"{s} {t.isoformat()}\n" for s, t in entries.items())
                _replace(self.paths.revoked, text)
            _replace(self.paths.crl, self._crl_pem(entries, now))

    def revoked(self) -> dict[str, datetime]:
        """Serial (lowercase hex) -> revocation time of every certificate revoked here."""
        with self._locked():
            return self._read_revoked()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _read_revoked(self) -> dict[str, datetime]:
        entries: dict[str, datetime] = {}
        try:
            lines = self.paths.revoked.read_text(encoding="ascii").splitlines()
        except FileNotFoundError:
            return entries
        for line in lines:
            parts = line.split()
            if len(parts) == 2:
                entries[parts[0]] = datetime.fromisoformat(parts[1])
        return entries

    def _crl_pem(self, entries: Mapping[str, datetime], now: datetime) -> str:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.issuing_cert.subject)
            .last_update(now)
            .next_update(now + timedelta(days=CRL_DAYS))
        )
        for serial, when in entries.items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(int(serial, 16))
                .revocation_date(when)
                .build()
            )
        crl = builder.sign(self._key.crypto_key, signature_hash(self._key.crypto_key))
        return crl.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
