"""nginx's effective configuration from ``nginx -T``, parsed with crossplane.

``nginx -T`` tests the configuration and then writes, to stdout, every file it loaded, each
after a line ``# configuration file PATH:`` and followed by one line feed of its own (nginx's
``ngx_show_config``). :func:`split_dump` cuts that into ``(path, text)`` pairs (each text is the
file's exact bytes), and :func:`parse_dump` parses each file on its own with crossplane
(``single=True``: crossplane never opens an include, and nothing of the controller's own
``/etc`` is read: the texts are written under a private temporary directory), then follows the
``include`` directives itself, in nginx's order, over the files the dump holds.

Give it the command's stdout only: nginx's own "syntax is ok" lines go to stderr.
"""

from __future__ import annotations

import os
import posixpath
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import crossplane

from agent.errors import ServerConfigError
from agent.servers.configmap import ConfigMap, Include, Listen, VirtualServer, glob_matches

DUMP_ARGV = ("-T",)
"""Arguments after the binary (and ``-c FILE`` when the config is not the default one)."""

_HEADER = re.compile(r"^# configuration file (?P<path>/[^\n]*):$")
_SERVER_CONTEXTS = ("http",)
Stmt = Mapping[str, Any]


def split_dump(output: str) -> list[tuple[str, str]]:
    """``nginx -T`` stdout -> ``[(path, text), ...]`` in load order (the main config first).

    Raises:
        ServerConfigError: the output holds no ``# configuration file`` section.
    """
    sections: list[tuple[str, list[str]]] = []
    for line in output.splitlines(keepends=True):
        match = _HEADER.match(line.rstrip("\n"))
        if match:
            sections.append((match["path"], []))
        elif sections:
            sections[-1][1].append(line)
    if not sections:
        raise ServerConfigError(
            "nginx -T printed no configuration file", hint="is this the stdout of nginx -T?"
        )
    # nginx writes one line feed after each file's bytes: drop it to get the file back
    return [(path, "".join(lines)[:-1] if lines else "") for path, lines in sections]


def _parse_texts(sections: list[tuple[str, str]]) -> dict[str, list[Stmt]]:
    """Each file's statements (crossplane's payload), parsed on its own."""
    parsed: dict[str, list[Stmt]] = {}
    with tempfile.TemporaryDirectory(prefix="origin-agent-nginx-") as tmp:
        for index, (path, text) in enumerate(sections):
            if "\0" in path:
                raise ServerConfigError("a file name with a NUL byte", where="nginx -T")
            local = os.path.join(tmp, str(index))  # never the path itself: no /etc is touched
            with open(local, "w", encoding="utf-8", errors="replace") as handle:
                handle.write(text)
            payload = crossplane.parse(
                local, single=True, check_ctx=False, check_args=False, catch_errors=True
            )
            config = payload["config"][0]
            if config["errors"]:
                error = config["errors"][0]
                message = str(error["error"]).replace(local, path)
                message = re.sub(r"\s+in \S+:\d+$", "", message)
                raise ServerConfigError(
                    f"cannot parse: {message}", where=f"{path}:{error.get('line') or 0}"
                )
            parsed.setdefault(path, config["parsed"])
    return parsed


@dataclass
class _Walk:
    """State of one walk over the include tree."""

    prefix: str
    files: Mapping[str, list[Stmt]]
    order: list[str] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)

    def resolve(self, pattern: str) -> str:
        return posixpath.normpath(posixpath.join(self.prefix, pattern))

    def statements(self, stmts: list[Stmt], file: str, context: str) -> Iterator[tuple[str, Stmt]]:
        """``(file, statement)`` for ``stmts``, with ``include`` expanded in place."""
        for stmt in stmts:
            if stmt["directive"] == "include" and stmt["args"]:
                pattern = self.resolve(stmt["args"][0])
                self.includes.append(Include(pattern, file, stmt["line"], context))
                for path in sorted(p for p in self.files if glob_matches(pattern, p)):
                    if path not in self.order:
                        self.order.append(path)
                    yield from self.statements(self.files[path], path, context)
            else:
                yield file, stmt


def _listen(args: list[str]) -> Listen | None:
    if not args or args[0].startswith("unix:"):
        return None
    value, params = args[0], set(args[1:])
    if value.startswith("["):
        address, _, port = value[1:].partition("]")
        port = port.lstrip(":") or "80"
        address = f"[{address}]"
    elif value.isdigit():
        address, port = "*", value
    elif ":" in value:
        address, _, port = value.rpartition(":")
    else:
        address, port = value, "80"
    if not port.isdigit():
        return None
    default = bool(params & {"default_server", "default"})
    return Listen(address, int(port), "ssl" in params, default)


def _server(walk: _Walk, stmts: list[Stmt], file: str, line: int) -> VirtualServer:
    listens: list[Listen] = []
    names: list[str] = []
    found: set[str] = set()
    locations: list[str] = []

    def visit(block: list[Stmt], at: str) -> None:
        for _, stmt in walk.statements(block, at, "server"):
            directive = stmt["directive"]
            found.add(directive)
            if directive == "listen":
                listen = _listen(stmt["args"])
                if listen is not None:
                    listens.append(listen)
            elif directive == "server_name":
                names.extend(stmt["args"])
            elif directive == "location":
                locations.append(" ".join(stmt["args"]))
            if "block" in stmt:
                visit(stmt["block"], at)

    visit(stmts, file)
    if not listens:
        listens.append(Listen("*", 80))  # nginx's default when run as root
    return VirtualServer(
        file=file,
        line=line,
        listens=tuple(listens),
        names=tuple(n for n in names if n),
        proxy_pass=bool(found & {"proxy_pass", "fastcgi_pass", "uwsgi_pass", "grpc_pass"}),
        root="root" in found,
        certificate="ssl_certificate" in found,
        locations=tuple(locations),
    )


def parse_dump(output: str) -> ConfigMap:
    """The effective configuration from ``nginx -T`` stdout (see the module docstring).

    Relative include patterns resolve against the main config's directory (nginx's
    ``--conf-path`` prefix); ``server`` blocks count inside ``http`` only (``stream`` servers
    are not web sites).

    Raises:
        ServerConfigError: not ``nginx -T`` output, or a file crossplane cannot parse
            (``where`` names the file and line).
    """
    sections = split_dump(output)
    files = _parse_texts(sections)
    main = sections[0][0]
    walk = _Walk(prefix=posixpath.dirname(main), files=files, order=[main])
    servers: list[VirtualServer] = []
    error_log: str | None = None
    pid_file: str | None = None

    def visit(stmts: list[Stmt], file: str, context: str) -> None:
        nonlocal error_log, pid_file
        for at, stmt in walk.statements(stmts, file, context):
            directive, args = stmt["directive"], stmt["args"]
            if context == "main" and directive == "error_log" and args and error_log is None:
                error_log = walk.resolve(args[0]) if args[0] != "stderr" else "stderr"
            elif context == "main" and directive == "pid" and args:
                pid_file = walk.resolve(args[0])
            elif directive == "server" and context in _SERVER_CONTEXTS and "block" in stmt:
                servers.append(_server(walk, stmt["block"], at, stmt["line"]))
            elif "block" in stmt and context == "main":
                visit(stmt["block"], at, directive)

    visit(files[main], main, "main")
    return ConfigMap(
        server="nginx",
        main_config=main,
        files=tuple(walk.order),
        includes=tuple(walk.includes),
        servers=tuple(servers),
        error_log=error_log,
        pid_file=pid_file,
        server_root=walk.prefix,
    )
