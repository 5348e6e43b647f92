"""The one place where argv lists become shell text, and where values bound for a shell or a
config file are validated."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from agent.errors import ValidationError
from agent.validate import shown

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._+@/=,:-]*$")


def join(argv: Iterable[str]) -> str:
    """Quote every element so a POSIX shell runs exactly ``argv``."""
    parts = list(argv)
    for part in parts:
        if "\x00" in part:
            raise ValidationError("argument contains a NUL byte", where="command")
    return " ".join(shlex.quote(p) for p in parts)


def check_hostname(value: str, *, where: str = "") -> str:
    """Return ``value`` if it is a DNS name (optionally a leading ``*.``), else raise."""
    if not isinstance(value, str) or not _HOSTNAME.fullmatch(value):
        raise ValidationError(f"invalid hostname {value!r}", where=where or None)
    return value


def check_path(value: str, *, where: str = "") -> str:
    """Return ``value`` if it is an absolute path of plain characters with no ``..``."""
    if (
        not isinstance(value, str)
        or not _SAFE_PATH.fullmatch(value)
        or any(seg == ".." for seg in value.split("/"))
    ):
        raise ValidationError(f"invalid path {value!r}", where=where or None)
    return value


def check_port(value: object, *, where: str = "") -> int:
    """Return ``value`` as an int if it is a TCP port (1-65535)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | str)
        or (isinstance(value, int) and not 1 <= value <= 65535)  # str() of a huge int raises
        or (isinstance(value, str) and len(value) > 8)
    ):
        raise ValidationError(f"invalid port {shown(value, 40)}", where=where or None)
    try:
        port: int = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(f"invalid port {value!r}", where=where or None) from None
    if not 1 <= port <= 65535 or str(port) != str(value).strip():
        raise ValidationError(f"invalid port {value!r}", where=where or None)
    return port
