"""What an origin looks like for one TLS site, gathered in one round trip.

One ``sh`` script prints every fact in sections (``@@NAME`` lines; file contents base64 so no
content can fake a section), and :func:`parse` turns that output into :class:`OriginFacts`.
"""

from __future__ import annotations

import base64
import binascii
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.transport.quote import check_path, join


@dataclass(frozen=True)
class OriginFacts:
    """Facts about one site on one origin. Contents are ``None`` when the file is absent."""

    servers: tuple[str, ...] = ()  # installed web servers: "nginx", "apache"
    systemd: bool = False
    current_version: str | None = None
    fullchain_pem: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    next_pubkey_pem: str | None = None
    files: dict[str, bytes | None] = field(default_factory=dict)  # path -> content
    links: dict[str, str | None] = field(default_factory=dict)  # path -> target
    checks: tuple[bool, ...] = ()  # per enable command: already done
    server_running: bool = False
    leftovers: int = 0  # .origin-agent-tmp-* entries from an interrupted run


def script(
    *,
    root: str,
    files: Sequence[str],
    links: Sequence[str],
    checks: Sequence[Sequence[Sequence[str]]],
    detect: Sequence[str],
    pid_files: Sequence[str],
) -> str:
    """The gather script. ``checks``: for each enable command, the argvs that all exit 0 once
    it is done."""
    q = shlex.quote
    check_path(root, where="cert_root")
    lines = [
        "exec 2>/dev/null",
        f"R={q(root)}",
        "echo @@detect; " + join(detect) + " || true",
        "echo @@systemd; [ -d /run/systemd/system ] && echo yes",
        'echo @@current; readlink "$R/current"',
        'echo @@fullchain; [ -f "$R/current/fullchain.pem" ] && base64 -w0 "$R/current/fullchain.pem"; echo',
        'echo @@meta; [ -f "$R/current/meta.json" ] && base64 -w0 "$R/current/meta.json"; echo',
        'echo @@next; [ -f "$R/next/pubkey.pem" ] && base64 -w0 "$R/next/pubkey.pem"; echo',
        'echo @@leftovers; ls -1d "$R"/.origin-agent-tmp-* | wc -l',
    ]
    for path in files:
        check_path(path, where="file")
        lines.append(
            f"echo @@file {q(path)}; if [ -f {q(path)} ]; then echo present; base64 -w0 {q(path)}; echo; fi"
        )
    for path in links:
        check_path(path, where="link")
        lines.append(f"echo @@link {q(path)}; readlink {q(path)}")
    for i, argvs in enumerate(checks):
        test = " && ".join(join(a) + " >/dev/null" for a in argvs) or "false"
        lines.append(f"echo @@check {i}; {test} && echo yes")
    running = " || ".join(f'kill -0 "$(cat {q(p)})"' for p in pid_files) or "false"
    lines.append(f"echo @@running; {{ {running}; }} && echo yes")
    lines.append("exit 0")
    return "\n".join(lines) + "\n"


def _sections(stdout: str) -> list[tuple[str, str, list[str]]]:
    out: list[tuple[str, str, list[str]]] = []
    for line in stdout.splitlines():
        if line.startswith("@@"):
            head, _, arg = line[2:].partition(" ")
            out.append((head, arg, []))
        elif out:
            out[-1][2].append(line)
    return out


def _b64(lines: list[str]) -> bytes | None:
    text = "".join(lines).strip()
    if not text:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def parse(stdout: str, *, detect_parser: Any = None) -> OriginFacts:
    """Pure: the gather script's stdout as :class:`OriginFacts`.

    ``detect_parser`` turns the detection listing into server names (the server adapters').
    """
    servers: tuple[str, ...] = ()
    values: dict[str, Any] = {"files": {}, "links": {}}
    checks: list[bool] = []
    for head, arg, body in _sections(stdout):
        first = body[0].strip() if body else ""
        if head == "detect" and detect_parser is not None:
            servers = tuple(detect_parser("\n".join(body)))
        elif head == "systemd":
            values["systemd"] = first == "yes"
        elif head == "current":
            values["current_version"] = first or None
        elif head == "fullchain":
            data = _b64(body)
            values["fullchain_pem"] = data.decode(errors="replace") if data else None
        elif head == "meta":
            data = _b64(body)
            try:
                meta = json.loads(data) if data else {}
            except ValueError:
                meta = {}
            values["meta"] = meta if isinstance(meta, dict) else {}
        elif head == "next":
            data = _b64(body)
            values["next_pubkey_pem"] = data.decode(errors="replace") if data else None
        elif head == "leftovers":
            values["leftovers"] = int(first) if first.isdigit() else 0
        elif head == "file":
            values["files"][arg] = (_b64(body[1:]) or b"") if first == "present" else None
        elif head == "link":
            values["links"][arg] = first or None
        elif head == "check":
            checks.append(first == "yes")
        elif head == "running":
            values["server_running"] = first == "yes"
    return OriginFacts(servers=servers, checks=tuple(checks), **values)
