"""Client private keys for SSH: read from their files once per version of the file, not once
per host (a fleet run opens hundreds of sessions with the same key)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agent.errors import ConnectError

_keys: dict[str, tuple[tuple[int, int, int, int], paramiko.PKey]] = {}
_keys_lock = threading.Lock()


def load_keys(name: str, paths: tuple[str, ...]) -> list[paramiko.PKey]:
    """Load private keys (ed25519, ecdsa, rsa); missing IdentityFiles from ssh config are
    skipped like OpenSSH does, an explicit one that cannot be read is an error. Each file is
    parsed once per version (size, mtime, inode), not once per host."""
    keys: list[paramiko.PKey] = []
    for path in paths:
        if not os.path.exists(path):
            raise ConnectError(f"key file {path} does not exist", host=name)
        try:
            keys.append(_cached_key(path))
        except (paramiko.SSHException, OSError, ValueError, TypeError) as err:
            raise ConnectError(
                f"cannot load key file {path}: {type(err).__name__}",
                host=name,
                hint="encrypted keys must be loaded in ssh-agent",
            ) from err
    return keys


def _cached_key(path: str) -> paramiko.PKey:
    st = os.stat(path)
    version = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
    with _keys_lock:
        cached = _keys.get(path)
        if cached is None or cached[0] != version:
            cached = _keys[path] = (version, _load_key(path))
    return cached[1]


def _load_key(path: str) -> paramiko.PKey:
    """Load one private key; when paramiko's own parser rejects a valid OpenSSH-format ECDSA
    or RSA key (it does for some ECDSA keys), build the key from cryptography's parse."""
    try:
        return paramiko.PKey.from_path(path)
    except paramiko.SSHException:
        data = Path(path).read_bytes()
        try:
            loaded: object = serialization.load_ssh_private_key(data, password=None)
        except ValueError:
            loaded = serialization.load_pem_private_key(data, password=None)
        if isinstance(loaded, ec.EllipticCurvePrivateKey):
            return paramiko.ECDSAKey(vals=(loaded, loaded.public_key()))
        if isinstance(loaded, rsa.RSAPrivateKey):
            return paramiko.RSAKey(key=loaded)
        raise
