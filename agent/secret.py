"""A value that must never be printed or logged: private keys, API tokens, passwords.

``str()`` and ``repr()`` of a :class:`Secret` are masked; the text is only reachable through
:meth:`Secret.reveal`, so a stray f-string, log call or traceback shows ``Secret('******')``.
"""

from __future__ import annotations

import hmac
from typing import NoReturn

MASK = "******"


class Secret:
    """Opaque holder of secret text (str) with a masked str/repr."""

    __slots__ = ("_value",)

    def __init__(self, value: str | bytes) -> None:
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if not isinstance(value, str):
            raise TypeError("Secret holds text or bytes")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The secret text. Call only where it is written to a file or sent to a peer."""
        value: str = object.__getattribute__(self, "_value")
        return value

    def reveal_bytes(self) -> bytes:
        """The secret text encoded as UTF-8."""
        return self.reveal().encode("utf-8")

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self.reveal())

    def __len__(self) -> int:
        return len(self.reveal())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self.reveal_bytes(), other.reveal_bytes())

    def __hash__(self) -> int:
        return hash((Secret, self.reveal()))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")
