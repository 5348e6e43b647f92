"""Secrets of the remote CA backends: read from the environment variable or the file a config
names, never inline. Errors never show a value that might be the secret itself (a token pasted
into ``token_env`` or ``token_file`` by mistake), and a file others may read is refused."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from typing import Any

from agent.errors import IssuerError, MissingSecretError
from agent.secret import Secret
from agent.validate import is_env_name

MAX_SECRET_BYTES = 64 * 1024  # a token, a key, a PEM: never more


def _opt_str(config: Mapping[str, Any], key: str, *, backend: str) -> str:
    value = config.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise IssuerError(f"{key} must be a one-line string (value not shown)", backend=backend)
    return value


def load_secret(
    config: Mapping[str, Any],
    *,
    backend: str,
    env_key: str,
    file_key: str,
    what: str,
) -> Secret | None:
    """Read a secret from the environment variable or the file the config names (not both).

    Surrounding whitespace is stripped (a trailing newline breaks HTTP headers).

    Raises:
        IssuerError: both given, not a variable name, variable unset or empty, file missing,
            unreadable, open to group or others, or empty; never showing the value.
    """
    env_name = _opt_str(config, env_key, backend=backend)
    file_name = _opt_str(config, file_key, backend=backend)
    if env_name and file_name:
        raise IssuerError(
            f"set either {env_key} or {file_key} for the {what}, not both", backend=backend
        )
    if env_name:
        return _secret_from_env(env_name, env_key=env_key, backend=backend, what=what)
    if file_name:
        return _secret_from_file(file_name, file_key=file_key, backend=backend)
    return None


def _secret_from_env(name: str, *, env_key: str, backend: str, what: str) -> Secret:
    """The secret in environment variable ``name``; errors never show ``name`` (a secret
    pasted into ``*_env`` by mistake would be echoed in reports)."""
    if not is_env_name(name):
        raise IssuerError(
            f"{env_key} is not an environment variable name (value not shown)",
            backend=backend,
            hint=f"give the name of the variable that holds the {what}, not the {what} itself",
        )
    value = os.environ.get(name, "").strip()
    if not value:
        raise MissingSecretError(
            f"the environment variable named by {env_key} is unset or empty",
            backend=backend,
            hint=f"export the {what} in it",
        )
    return Secret(value)


def _secret_from_file(path: str, *, file_key: str, backend: str) -> Secret:
    """The secret in file ``path``, which only its owner may read. A path that does not exist
    is not shown (it may be a secret pasted into ``*_file`` by mistake).

    Raises:
        IssuerError: missing, unreadable, readable by group or others, empty, not UTF-8.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise MissingSecretError(
            f"cannot read {file_key}: no such file (value not shown)", backend=backend
        ) from None
    except OSError as err:
        raise IssuerError(
            f"cannot read {file_key} {path}: {err.strerror}", backend=backend
        ) from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise IssuerError(f"{file_key} {path} is not a regular file", backend=backend)
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise IssuerError(
                f"{file_key} {path} is open to group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o})",
                backend=backend,
                hint=f"chmod 600 {path}",
            )
        data = fh.read(MAX_SECRET_BYTES + 1)
    if len(data) > MAX_SECRET_BYTES:
        raise IssuerError(f"{file_key} {path} is larger than a secret", backend=backend)
    try:
        value = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise IssuerError(
            f"cannot read {file_key} {path}: not UTF-8 text", backend=backend
        ) from None
    if not value:
        raise IssuerError(f"{file_key} {path} is empty", backend=backend)
    return Secret(value)
