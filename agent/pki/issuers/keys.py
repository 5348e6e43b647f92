"""The keys of an ``issuer:`` mapping, declared once per backend.

Each backend lists its keys as a tuple of :class:`Key`; its own validation takes the accepted
and required names, the defaults and the controller paths from that tuple (:func:`names`,
:func:`required`, :func:`default`, :func:`paths`), and ``origin-agent doc ISSUER`` prints the
same tuple, so what is documented and what is checked cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

KeyType = Literal["string", "url", "file", "directory", "env", "int", "number", "bool", "list"]
"""What a value is: ``file``/``directory`` are paths on the controller (relative ones are
resolved against the inventory's directory); ``env`` is the *name* of an environment variable
holding a secret (secrets are never written inline)."""


@dataclass(frozen=True)
class Key:
    """One key an issuer backend accepts."""

    name: str
    type: KeyType = "string"
    default: Any = None
    required: bool = False
    choices: tuple[Any, ...] = ()
    help: str = ""


def names(keys: Sequence[Key]) -> tuple[str, ...]:
    """Every accepted key name, in declaration order."""
    return tuple(k.name for k in keys)


def required(keys: Sequence[Key]) -> tuple[str, ...]:
    """The names that must be given."""
    return tuple(k.name for k in keys if k.required)


def paths(keys: Sequence[Key]) -> tuple[str, ...]:
    """The names whose values are controller files or directories."""
    return tuple(k.name for k in keys if k.type in ("file", "directory"))


def default(keys: Sequence[Key], name: str) -> Any:
    """The declared default of ``name``.

    Raises:
        KeyError: no key of that name is declared (a programming error).
    """
    for key in keys:
        if key.name == name:
            return key.default
    raise KeyError(name)


RETRY_KEYS = (
    Key(
        "retries",
        "int",
        3,
        help="extra attempts when the server is unreachable or answers 5xx (0-10)",
    ),
    Key("backoff", "number", 1.0, help="first wait between attempts in seconds, doubling (0-60)"),
)
"""The retry keys every remote backend shares (read by ``RetryPolicy.from_config``)."""
