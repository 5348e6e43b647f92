"""What the server itself said after a reload: its error log lines, without the noise.

The caller notes the error log's size before the reload (``stat -c %s PATH``) and, when the
reload, its config test or the verification fails, reads the log from that byte on (``tail -c
+N PATH``, N being the size plus one) and passes the text to :func:`server_errors`. The server's
own messages come back one per line, without timestamps or pids, repeats dropped (nginx tries a
bind five times), per-request errors left out (they name a ``client``). Both formats here are
recorded from the real servers (``tests/fixtures/servers/recorded/errorlogs/``).

A line Apache writes raw, before its own log format applies (``(98)Address already in use:
AH00072: make_sock: could not bind to address 127.0.1.5:443``), is kept as it is.
"""

from __future__ import annotations

import re

LEVELS = ("emerg", "alert", "crit", "error")
_NGINX = re.compile(
    r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(?P<level>\w+)\] \d+#\d+: (?:\*\d+ )?(?P<msg>.*)$"
)
_APACHE = re.compile(r"^\[[^\]]*\] \[(?:[\w.]*:)?(?P<level>\w+)\] \[pid [^\]]*\] (?P<msg>.*)$")
_MAX_LINE = 300


def size_argv(path: str) -> list[str]:
    """The error log's size in bytes now (prints nothing and exits 1 when there is none)."""
    return ["stat", "-c", "%s", "--", path]


def since_argv(path: str, offset: int) -> list[str]:
    """The error log from byte ``offset`` (a size :func:`size_argv` printed) to its end."""
    return ["tail", "-c", f"+{int(offset) + 1}", "--", path]


def _message(line: str, server: str) -> str | None:
    pattern = _NGINX if server == "nginx" else _APACHE
    match = pattern.match(line)
    if match is None:
        if server == "nginx" or not line.strip():
            return None
        message = line.strip()  # Apache's raw startup lines
    else:
        if match["level"] not in LEVELS:
            return None
        message = match["msg"].strip()
    if "client: " in message or "[client " in message:
        return None  # a request's error, not the server's
    return message


def server_errors(log_text: str, server: str, limit: int = 5) -> list[str]:
    """The server's own error messages in ``log_text``, oldest first, each once, one line each
    (at most ``limit``; each cut to 300 characters).

    Args:
        log_text: the error log since the reload (see the module docstring).
        server: ``nginx`` or ``apache``.
    """
    found: list[str] = []
    for line in log_text.splitlines():
        message = _message(line, server)
        if message is None or message in found:
            continue
        found.append(message[:_MAX_LINE])
        if len(found) >= limit:
            break
    return found
