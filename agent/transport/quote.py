"""The one place where argv lists become shell text (values bound for a shell or a config file
are validated in :mod:`agent.validate`)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from agent.errors import ValidationError


def join(argv: Iterable[str]) -> str:
    """Quote every element so a POSIX shell runs exactly ``argv``."""
    parts = list(argv)
    for part in parts:
        if "\x00" in part:
            raise ValidationError("argument contains a NUL byte", where="command")
    return " ".join(shlex.quote(p) for p in parts)
