"""Private keys: generation, PKCS#8 PEM serialisation, and writing key files safely.

Keys are made here, on the controller, with ``cryptography``. A :class:`PrivateKey` never shows
its material in ``str``/``repr``; its PEM comes out as a :class:`~agent.secret.Secret`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal, get_args

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agent.errors import ValidationError
from agent.secret import Secret

KeyType = Literal["ec256", "ec384", "rsa2048", "rsa3072", "rsa4096"]
KEY_TYPES: tuple[str, ...] = get_args(KeyType)
DEFAULT_KEY_TYPE: KeyType = "ec256"

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

_CURVES: dict[str, type[ec.EllipticCurve]] = {"ec256": ec.SECP256R1, "ec384": ec.SECP384R1}
_RSA_BITS: dict[str, int] = {"rsa2048": 2048, "rsa3072": 3072, "rsa4096": 4096}


def check_key_type(value: object, *, where: str = "") -> KeyType:
    """Return ``value`` if it names a supported key type.

    Raises:
        ValidationError: anything else (the message lists the accepted types).
    """
    if isinstance(value, str) and value in KEY_TYPES:
        return value  # type: ignore[return-value]
    raise ValidationError(
        f"unknown key type {value!r} (expected one of: {', '.join(KEY_TYPES)})",
        where=where or None,
    )


def key_type_of(key: SigningKey | PublicKey) -> str:
    """The key type string of a private or public key (``ec256``, ``rsa2048``...).

    Keys we cannot make (other curves, Ed25519...) give a descriptive string such as
    ``ec-secp521r1`` or ``ed25519``; they are reported, never generated.
    """
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        known = {"secp256r1": "ec256", "secp384r1": "ec384"}
        return known.get(key.curve.name, f"ec-{key.curve.name}")
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return f"rsa{key.key_size}"
    name = type(key).__name__.lower().replace("publickey", "").replace("privatekey", "")
    return name.lstrip("_") or "unknown"


def signature_hash(key: SigningKey) -> hashes.SHA256 | hashes.SHA384:
    """The digest to sign with: SHA-384 for P-384, SHA-256 otherwise."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


class PrivateKey:
    """A private key whose material is never shown by ``str``/``repr``."""

    __slots__ = ("_key", "key_type")

    def __init__(self, key: SigningKey) -> None:
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValidationError("only EC and RSA private keys are supported", where="key")
        self._key = key
        self.key_type = key_type_of(key)

    @classmethod
    def generate(cls, key_type: str = DEFAULT_KEY_TYPE) -> PrivateKey:
        """Make a new key of ``key_type``.

        Raises:
            ValidationError: unknown key type.
        """
        kind = check_key_type(key_type)
        if kind in _CURVES:
            return cls(ec.generate_private_key(_CURVES[kind]()))
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[kind]))

    @classmethod
    def from_pem(cls, pem: str | bytes | Secret, *, where: str = "key") -> PrivateKey:
        """Load an unencrypted PEM private key (PKCS#8, SEC1 or PKCS#1).

        Raises:
            ValidationError: not a PEM private key, encrypted, or an unsupported algorithm.
        """
        if isinstance(pem, Secret):
            data = pem.reveal_bytes()
        elif isinstance(pem, str):
            data = pem.encode("utf-8", "replace")
        else:
            data = pem
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as err:
            # The library's message can quote nothing secret, but keep ours generic anyway.
            raise ValidationError("not an unencrypted PEM private key", where=where) from err
        except Exception as err:  # UnsupportedAlgorithm and friends
            raise ValidationError("unsupported private key", where=where) from err
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValidationError("only EC and RSA private keys are supported", where=where)
        return cls(key)

    @property
    def crypto_key(self) -> SigningKey:
        """The underlying ``cryptography`` key object (for signing)."""
        return self._key

    def public_key(self) -> PublicKey:
        return self._key.public_key()

    def pem(self) -> Secret:
        """The key as unencrypted PKCS#8 PEM, wrapped in a :class:`Secret`."""
        data = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return Secret(data)

    @property
    def pin(self) -> str:
        """The SPKI pin (``pin-sha256``) of the public half."""
        from agent.pki.pins import spki_pin

        return spki_pin(self.public_key())

    def __repr__(self) -> str:
        return f"PrivateKey({self.key_type}, pin={self.pin})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a PrivateKey cannot be pickled")


def write_key_file(path: str | os.PathLike[str], pem: Secret, *, overwrite: bool = False) -> Path:
    """Write ``pem`` to ``path`` on this machine with mode 0600 from the first byte.

    The file is created with ``O_CREAT | O_EXCL`` and mode 0600 (then ``fchmod`` to exactly 0600
    whatever the umask), so there is never a moment when others can read it. With ``overwrite``
    the key goes to a fresh 0600 file in the same directory that is renamed over ``path``.

    Raises:
        ValidationError: ``path`` exists and ``overwrite`` is false, or it cannot be written.
    """
    target = Path(path)
    if not overwrite:
        _write_new(target, pem.reveal_bytes())
        return target
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)  # mkstemp: 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(pem.reveal_bytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _write_new(target: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise ValidationError(
            "key file already exists", where=str(target), hint="refusing to overwrite it"
        ) from None
    except OSError as err:
        raise ValidationError(f"cannot create key file: {err.strerror}", where=str(target)) from err
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        target.unlink(missing_ok=True)
        raise
