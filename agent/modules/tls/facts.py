"""What an origin looks like for one TLS site, gathered in one round trip.

One ``sh`` script prints every fact in sections (``@@NAME`` lines), and :func:`parse` turns
that output into :class:`OriginFacts`. Everything is tested with shell builtins; the contents
of every file and the targets of every symlink travel in one base64 tar stream (two ``tar``
and one ``base64`` process in all), so no content can fake a section and no link target can
break a line.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import posixpath
import shlex
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.transport.quote import join
from agent.validate import check_path

_MAX_TAR = 16 * 1024 * 1024  # decoded bytes: far above any config, key or certificate


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
    site_record: bytes | None = None  # NAME/site-files: where an earlier run placed the site
    dumps: dict[str, tuple[str, ...]] = field(default_factory=dict)  # server -> base64 stdouts
    resolved: dict[str, str] = field(default_factory=dict)  # site-dir symlink -> its target
    seen: dict[str, bytes] = field(default_factory=dict)  # site-dir files read with a dump


def _site_paths(root: str) -> tuple[str, str, str, str, str]:
    """The site's own entries: the ``current`` link, then its certificate, meta, next key and
    the record of where the site was placed."""
    return (
        f"{root}/current",
        f"{root}/current/fullchain.pem",
        f"{root}/current/meta.json",
        f"{root}/next/pubkey.pem",
        f"{root}/site-files",
    )


@dataclass(frozen=True)
class Dump:
    """A server's effective configuration, asked for unless our own site is already placed:
    its ``argvs`` (stdouts base64'd) and the site directories whose files (and links) are read
    with it, when the server's ``binary`` exists."""

    server: str
    binary: str
    argvs: tuple[tuple[str, ...], ...]
    dirs: tuple[str, ...]
    files: tuple[str, ...] = ()  # read with the dump (Apache: the main config's includes)


def _dump_lines(root: str, dumps: Sequence[Dump]) -> list[str]:
    q = shlex.quote
    record = f"{q(root)}/site-files"
    lines = [
        f"K=; P=; [ -f {record} ] && read -r K P _ < {record}",
        'case "$P" in /*) [ -f "$P" ] && set -- "$@" "$P" ;; esac',  # our site file, settled
    ]
    body: list[str] = []
    for d in dumps:
        body.append(f"  if [ -x {q(check_path(d.binary, where='binary'))} ]; then")
        for i, argv in enumerate(d.argvs):
            body.append(
                f"    echo @@dump {q(d.server)} {i}; {{ {join(argv)}; }} 2>/dev/null | base64 -w0; echo"
            )
        body += [
            f'    [ -f {q(check_path(f, where="file"))} ] && set -- "$@" {q(f)}' for f in d.files
        ]
        globs = " ".join(f"{q(check_path(x, where='site dir'))}/*" for x in d.dirs)
        body += [
            f"    for f in {globs}; do",
            '      if [ -L "$f" ]; then printf \'@@resolved %s\\n%s\\n\' "$f" "$(readlink -f -- "$f")"; fi',
            '      if [ -f "$f" ]; then set -- "$@" "$f"; fi',
            "    done",
            "  fi",
        ]
    if body:
        lines += ['if [ "$K" != own ]; then', *body, "fi"]
    return lines


def script(
    *,
    root: str,
    files: Sequence[str],
    links: Sequence[str],
    checks: Sequence[Sequence[Sequence[str]]],
    detect: Sequence[str],
    pid_files: Sequence[str],
    dumps: Sequence[Dump] = (),
) -> str:
    """The gather script. ``detect``: paths whose existence tells which servers are installed;
    ``checks``: for each enable command, the argvs that all exit 0 once it is done."""
    q = shlex.quote
    check_path(root, where="cert_root")
    current, *site_files = _site_paths(root)
    lines = [
        "exec 2>/dev/null",
        f"echo @@root {q(root)}",
        "echo @@detect",
        *(f"[ -e {q(check_path(p, where='detect'))} ] && echo {q(p)}" for p in detect),
        "echo @@systemd; [ -d /run/systemd/system ] && echo yes",
        f"set -- {q(root)}/.origin-agent-tmp-*",
        'echo @@leftovers; if [ -e "$1" ] || [ -L "$1" ]; then echo $#; else echo 0; fi',
        "set --",
    ]
    for path in site_files:
        lines.append(f'[ -f {q(path)} ] && set -- "$@" {q(path)}')
    for path in files:
        check_path(path, where="file")
        lines.append(
            f'echo @@file {q(path)}; [ -f {q(path)} ] && {{ echo present; set -- "$@" {q(path)}; }}'
        )
    for path in links:
        check_path(path, where="link")
        lines.append(f"echo @@link {q(path)}")
    for i, argvs in enumerate(checks):
        test = " && ".join(join(a) + " >/dev/null" for a in argvs) or "false"
        lines.append(f"echo @@check {i}; {test} && echo yes")
    lines += _dump_lines(root, dumps)
    # Regular files (through symlinks: -h) in one tar, then the symlinks themselves in another.
    link_tests = "; ".join(f'[ -L {q(p)} ] && set -- "$@" {q(p)}' for p in (current, *links))
    tar = "tar -c -f - -b 1 -P --no-recursion"
    lines += [
        "echo @@tar",
        f'{{ [ $# -eq 0 ] || {tar} -h --hard-dereference -- "$@"; set --; {link_tests}',
        f'  [ $# -eq 0 ] || {tar} -- "$@"; }} | base64 -w0; echo',
    ]
    running = (
        " || ".join(
            f'{{ p=; read -r p < {q(pid)}; case "$p" in ""|*[!0-9]*) false ;; *) kill -0 "$p" ;; esac; }}'
            for pid in pid_files
        )
        or "false"
    )
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


def _members(data: bytes | None) -> tuple[dict[str, bytes], dict[str, str]]:
    """Regular files (path -> content) and symlinks (path -> target) of the tar stream(s).
    A damaged stream yields what was read before the damage."""
    contents: dict[str, bytes] = {}
    targets: dict[str, str] = {}
    if not data or len(data) > _MAX_TAR:
        return contents, targets
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:", ignore_zeros=True) as tar:
            for member in tar:
                name = posixpath.normpath(member.name)
                if member.issym():
                    targets[name] = member.linkname
                elif member.isreg():
                    fh = tar.extractfile(member)
                    if fh is not None:
                        contents[name] = fh.read()
    except (tarfile.TarError, EOFError, OSError, ValueError):
        pass
    return contents, targets


@dataclass
class _Read:
    """The sections of the gather output, as read, before they become :class:`OriginFacts`."""

    root: str = ""
    servers: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=lambda: {"files": {}, "links": {}})
    checks: list[bool] = field(default_factory=list)
    present: set[str] = field(default_factory=set)
    link_paths: list[str] = field(default_factory=list)
    contents: dict[str, bytes] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    dumps: dict[str, list[str]] = field(default_factory=dict)
    resolved: dict[str, str] = field(default_factory=dict)


def _read(stdout: str, detect_parser: Any) -> _Read:
    read = _Read()
    values = read.values
    for head, arg, body in _sections(stdout):
        first = body[0].strip() if body else ""
        if head == "root":
            read.root = arg
        elif head == "detect" and detect_parser is not None:
            read.servers = tuple(detect_parser("\n".join(body)))
        elif head == "systemd":
            values["systemd"] = first == "yes"
        elif head == "leftovers":
            values["leftovers"] = int(first) if first.isascii() and first.isdigit() else 0
        elif head == "file":
            values["files"][arg] = None
            if first == "present":
                read.present.add(arg)
        elif head == "link":
            read.link_paths.append(arg)
        elif head == "check":
            read.checks.append(first == "yes")
        elif head == "tar":
            read.contents, read.targets = _members(_b64(body))
        elif head == "running":
            values["server_running"] = first == "yes"
        elif head == "dump":
            server, _, _ = arg.partition(" ")
            read.dumps.setdefault(server, []).append("".join(body).strip())
        elif head == "resolved" and first.startswith("/"):
            read.resolved[arg] = first
    return read


def _site_values(root: str, contents: dict[str, bytes], targets: dict[str, str]) -> dict[str, Any]:
    """The site's own entries under ``root``: record, current version, certificate, next key
    and meta."""
    current, fullchain, meta_path, next_path, record = (
        posixpath.normpath(p) for p in _site_paths(root)
    )
    values: dict[str, Any] = {
        "site_record": contents.get(record),
        "current_version": targets.get(current),
    }
    if contents.get(fullchain):
        values["fullchain_pem"] = contents[fullchain].decode(errors="replace")
    if contents.get(next_path):
        values["next_pubkey_pem"] = contents[next_path].decode(errors="replace")
    try:
        meta = json.loads(contents[meta_path]) if meta_path in contents else {}
    except ValueError:
        meta = {}
    values["meta"] = meta if isinstance(meta, dict) else {}
    return values


def parse(stdout: str, *, detect_parser: Any = None) -> OriginFacts:
    """Pure: the gather script's stdout as :class:`OriginFacts`.

    ``detect_parser`` turns the detection listing into server names (the server adapters').
    """
    read = _read(stdout, detect_parser)
    contents, targets = read.contents, read.targets
    values = read.values
    values["dumps"] = {k: tuple(v) for k, v in read.dumps.items()}
    values["resolved"] = read.resolved
    values["seen"] = contents
    for path in read.present:  # present but unreadable: empty, never "absent" (would recreate it)
        values["files"][path] = contents.get(posixpath.normpath(path), b"")
    for path in read.link_paths:
        values["links"][path] = targets.get(posixpath.normpath(path))
    if read.root.startswith("/"):
        values.update(_site_values(read.root, contents, targets))
    return OriginFacts(servers=read.servers, checks=tuple(read.checks), **values)
