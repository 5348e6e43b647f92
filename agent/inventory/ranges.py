"""Host entries: ``name``, ``name:port``, ``[v6addr]:port`` and ranges like ``web[01:20]``.

Range rules follow Ansible: ``[start:end]`` or ``[start:end:step]``, inclusive; numeric bounds
with a leading zero must have the same width and are zero-padded (``[01:10]``); single letters
give alphabetic ranges (``[a:c]``); an empty start means 0; several ranges in one name multiply.
"""

from __future__ import annotations

import re
import string

from agent.validate import is_ipv6, shown

MAX_EXPANSION = 100_000  # hosts one entry may expand to

_BRACKETED_PORT = re.compile(r"^\[([^\[\]]+)\]:(\d+)$")
# a name (colons only inside [...] ranges) followed by :port
_NAME_PORT = re.compile(r"^((?:[^:\[\]]|\[[^\[\]]*\])+):(\d+)$")


def _q(text: str) -> str:
    """A short marked excerpt of ``text``: an inventory line given by mistake (a password
    file) is never echoed whole."""
    return shown(text, 24)


class RangeError(ValueError):
    """A host entry or range that cannot be expanded (message says why)."""


def split_port(entry: str) -> tuple[str, int | None]:
    """Split ``entry`` into (name-or-pattern, port or None).

    Raises:
        RangeError: the port is out of range or the entry ends with ``:``.
    """
    text = entry.strip()
    match = _BRACKETED_PORT.match(text)
    if match and _is_ipv6(match.group(1)):
        return match.group(1), _port(match.group(2), entry)
    if _is_ipv6(text):
        return text, None
    match = _NAME_PORT.match(text)
    if match:
        return match.group(1), _port(match.group(2), entry)
    if text.endswith(":"):
        raise RangeError(f"host entry {_q(entry)} ends with ':' but gives no port")
    return text, None


def _port(text: str, entry: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise RangeError(f"port {port} in host entry {_q(entry)} is not in 1-65535")
    return port


def _is_ipv6(text: str) -> bool:
    return is_ipv6(text)


def expand(pattern: str) -> list[str]:
    """Expand every ``[x:y]`` / ``[x:y:step]`` range in ``pattern`` (Ansible's rules).

    Raises:
        RangeError: malformed, reversed or mismatched range, or more than MAX_EXPANSION names.
    """
    if "[" not in pattern and "]" not in pattern:
        return [pattern]
    results: list[str] = []
    pending = [pattern]
    while pending:  # bounded: each step removes one range; total output capped below
        current = pending.pop()
        start = current.find("[")
        if start < 0:
            if "]" in current:
                raise RangeError(f"unmatched ']' in host range {_q(pattern)}")
            results.append(current)
            if len(results) > MAX_EXPANSION:
                raise RangeError(f"host range {_q(pattern)} expands to over {MAX_EXPANSION} hosts")
            continue
        end = current.find("]", start)
        if end < 0:
            raise RangeError(f"unclosed '[' in host range {_q(pattern)}")
        head, body, tail = current[:start], current[start + 1 : end], current[end + 1 :]
        items = _range_items(body, pattern)
        if len(items) * (len(pending) + 1) > MAX_EXPANSION:
            raise RangeError(f"host range {_q(pattern)} expands to more than {MAX_EXPANSION} hosts")
        pending.extend(head + item + tail for item in reversed(items))
    return results


def _range_items(body: str, pattern: str) -> list[str]:
    bounds = body.split(":")
    if len(bounds) not in (2, 3):
        raise RangeError(
            f"host range [{body}] in {_q(pattern)} must be [start:end] or [start:end:step]"
        )
    beg, end = bounds[0].strip(), bounds[1].strip()
    step_text = bounds[2].strip() if len(bounds) == 3 else "1"
    if not beg:
        beg = "0"
    if not end:
        raise RangeError(f"host range [{body}] in {_q(pattern)} has no end value")
    try:
        step = int(step_text)
    except ValueError:
        raise RangeError(f"host range [{body}] in {_q(pattern)} has a non-numeric step") from None
    if step <= 0:
        raise RangeError(f"host range [{body}] in {_q(pattern)} needs a positive step")
    letters = string.ascii_letters
    if len(beg) == 1 and len(end) == 1 and beg in letters and end in letters:
        i_beg, i_end = letters.index(beg), letters.index(end)
        if i_beg > i_end:
            raise RangeError(f"host range [{body}] in {_q(pattern)} has start after end")
        return list(letters[i_beg : i_end + 1 : step])
    if not (beg.isdigit() and end.isdigit() and beg.isascii() and end.isascii()):
        raise RangeError(f"host range [{body}] in {_q(pattern)} must be numbers or single letters")
    if len(beg) > 9 or len(end) > 9:
        raise RangeError(f"host range [{body}] in {_q(pattern)} is too large")
    width = 0
    if beg.startswith("0") and len(beg) > 1:
        if len(beg) != len(end):
            raise RangeError(
                f"host range [{body}] in {_q(pattern)} must give start and end with the same width"
            )
        width = len(beg)
    i_beg, i_end = int(beg), int(end)
    if i_beg > i_end:
        raise RangeError(f"host range [{body}] in {_q(pattern)} has start after end")
    if (i_end - i_beg) // step + 1 > MAX_EXPANSION:
        raise RangeError(f"host range {_q(pattern)} expands to more than {MAX_EXPANSION} hosts")
    return [str(i).zfill(width) for i in range(i_beg, i_end + 1, step)]


def expand_entry(entry: str) -> tuple[list[str], int | None]:
    """Expand one host entry (``web[1:3].example.com:2222``) to (names, port).

    Raises:
        RangeError: see :func:`split_port` and :func:`expand`.
    """
    name, port = split_port(entry)
    if _is_ipv6(name):
        return [name], port
    return expand(name), port
