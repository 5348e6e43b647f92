"""argparse types for numbers with a range: a bad value is a usage error (exit 2) naming the
option, never an ``OverflowError`` or ``nan`` deep inside a run."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from agent.validate import terminal_safe

MAX_TIMEOUT = 3600.0


def seconds(text: str) -> float:
    """A timeout in seconds: finite, more than 0, at most :data:`MAX_TIMEOUT`."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"{text[:20]!r} is not a number of seconds (more than 0, at most {MAX_TIMEOUT:g})"
        )
    return value


def int_range(low: int, high: int) -> Callable[[str], int]:
    """An integer from ``low`` to ``high`` (digits only, so no 5,000-digit conversions)."""

    def parse(text: str) -> int:
        stripped = text.strip()
        digits = stripped.lstrip("-")
        if not digits.isdigit() or len(digits) > 12 or not low <= int(stripped) <= high:
            raise argparse.ArgumentTypeError(
                f"{text[:20]!r} is not a whole number from {low} to {high}"
            )
        return int(stripped)

    parse.__name__ = f"int from {low} to {high}"
    return parse


def new_dir(text: str) -> Path:
    """A directory path to create: not empty, no control characters, each part at most 255
    bytes (``ca init ''`` would otherwise write into the current directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty directory name (use . for this directory)")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise argparse.ArgumentTypeError("a directory name with a control character")
    if len(text.encode()) > 4095 or any(len(part.encode()) > 255 for part in text.split("/")):
        raise argparse.ArgumentTypeError("a directory name longer than 255 bytes")
    return Path(text)


def common_name(text: str) -> str:
    """A certificate common name: 1-64 printable characters, no bidi overrides."""
    if not 1 <= len(text) <= 64 or not text.isprintable() or not terminal_safe(text) == text:
        raise argparse.ArgumentTypeError("a name must be 1-64 printable characters")
    return text
