"""What a web server really loads: its virtual servers, files and includes, as typed values.

Both parsers (:mod:`agent.servers.nginx_config` for ``nginx -T``, :mod:`agent.servers.apache_config`
for ``apache2ctl -S`` plus ``-t -D DUMP_INCLUDES``) return a :class:`ConfigMap`; the rest of this
module answers questions on it without I/O:

* :func:`claims` -- which enabled server blocks / virtual hosts answer a name on a port;
* :func:`sole_claim` -- the one that serves it, or a one-line error naming both ``file:line``
  when two enabled sites claim the same name on the same port (nginx ignores the second one with
  a warning; Apache silently serves the first);
* :meth:`ConfigMap.loads` -- whether a path would be read by the server (an ``include`` glob of
  the right context matches it).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from agent.errors import ServerConfigError

ServerKind = Literal["nginx", "apache"]
MatchKind = Literal["exact", "wildcard", "regex"]


@dataclass(frozen=True)
class Listen:
    """One address a virtual server listens on: ``address`` is "" or ``*`` for all."""

    address: str
    port: int
    ssl: bool = False
    default_server: bool = False


@dataclass(frozen=True)
class VirtualServer:
    """An enabled nginx ``server`` block or Apache ``<VirtualHost>``.

    Attributes:
        file, line: where the block starts (the file as the server names it: for a
            ``sites-enabled`` symlink, the link, not its target).
        names: ``server_name`` values / ``ServerName`` then ``ServerAlias`` values, as written.
        proxy_pass, root, certificate: it proxies somewhere (``proxy_pass``/``ProxyPass``), has a
            document root, has a certificate of its own; ``None`` when not known (Apache's
            ``-S`` does not say; :func:`agent.servers.apache_config.with_details` fills them in).
        locations: the ``location`` arguments of an nginx block (joined by spaces).
    """

    file: str
    line: int
    listens: tuple[Listen, ...]
    names: tuple[str, ...]
    proxy_pass: bool | None = None
    root: bool | None = None
    certificate: bool | None = None
    locations: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(sorted({listen.port for listen in self.listens}))

    def on_port(self, port: int) -> tuple[Listen, ...]:
        return tuple(listen for listen in self.listens if listen.port == port)


@dataclass(frozen=True)
class Include:
    """An include directive: the absolute glob, where it is, and the block it sits in
    (nginx: ``main``, ``http``, ``server``...; Apache: ``main``)."""

    pattern: str
    file: str
    line: int
    context: str


@dataclass(frozen=True)
class ConfigMap:
    """A server's effective configuration (see the module docstring).

    Attributes:
        main_config: the file the server started from.
        files: every file it loaded, in load order.
        includes: every include directive of those files, in order.
        servers: every enabled virtual server, in load order.
        error_log: the main error log (``None`` when the output does not say).
        pid_file: the pid file (``None`` when the output does not say).
        server_root: Apache's ``ServerRoot`` (relative includes resolve against it); nginx's
            prefix (the main config's directory).
    """

    server: ServerKind
    main_config: str
    files: tuple[str, ...]
    includes: tuple[Include, ...]
    servers: tuple[VirtualServer, ...]
    error_log: str | None = None
    pid_file: str | None = None
    server_root: str = ""

    def loads(self, path: str, context: str | None = None) -> Include | None:
        """The include directive that would load ``path`` (in ``context`` when given)."""
        for include in self.includes:
            if context is not None and include.context != context:
                continue
            if glob_matches(include.pattern, path):
                return include
        return None

    def find(self, file: str, line: int) -> VirtualServer | None:
        return next((s for s in self.servers if s.file == file and s.line == line), None)


def glob_matches(pattern: str, path: str) -> bool:
    """``path`` matches the include glob ``pattern`` the way glob(3) does (``*`` stays
    within one path component and does not match a leading dot)."""
    if not pattern.startswith("/") or not path.startswith("/"):
        return False
    return _glob_regex(pattern).fullmatch(path) is not None


@functools.lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    for component in pattern.split("/"):
        out = "" if component.startswith(".") or not component else r"(?!\.)"
        index = 0
        while index < len(component):
            ch = component[index]
            close = component.find("]", index + 2) if ch == "[" else -1
            if ch == "*":
                out += "[^/]*"
            elif ch == "?":
                out += "[^/]"
            elif close > 0:
                body = component[index + 1 : close]
                body = "^" + body[1:] if body.startswith("!") else body
                out += "[" + body.replace("\\", "\\\\") + "]"
                index = close
            else:
                out += re.escape(ch)
            index += 1
        parts.append(out)
    try:
        return re.compile("/".join(parts))
    except re.error:  # a bracket glob(3) reads literally, e.g. [z-a]
        return re.compile(re.escape(pattern))


@dataclass(frozen=True)
class Claim:
    """A virtual server that answers ``name`` on ``port``, and how its names match it."""

    server: VirtualServer
    name: str
    port: int
    match: MatchKind
    pattern: str
    ssl: bool

    @property
    def file(self) -> str:
        return self.server.file

    @property
    def line(self) -> int:
        return self.server.line

    @property
    def where(self) -> str:
        return self.server.where


def _match(pattern: str, name: str) -> MatchKind | None:
    pat = pattern.lower()
    if pat == name:
        return "exact"
    if "*" not in pat and not pat.startswith((".", "~")):
        return None
    if pat.startswith("~"):
        try:
            return "regex" if re.search(pattern[1:], name) else None
        except re.error:
            return None  # a PCRE-only pattern: not ours to judge
    if pat.startswith("*.") and name.endswith(pat[1:]):
        return "wildcard"
    if pat.startswith(".") and (name == pat[1:] or name.endswith(pat)):
        return "wildcard"
    if pat.endswith(".*") and name.startswith(pat[:-1]):
        return "wildcard"
    if "*" in pat and "." in pat and re.fullmatch(re.escape(pat).replace(r"\*", ".*"), name):
        return "wildcard"  # Apache's ServerAlias globs
    return None


_ORDER: dict[MatchKind, int] = {"exact": 0, "wildcard": 1, "regex": 2}


def claims(config: ConfigMap, name: str, port: int) -> list[Claim]:
    """Every enabled virtual server whose names match ``name`` on ``port``, best match first
    (exact names, then wildcards, then regexes; load order within each).

    A catch-all default server (``server_name _``, or Apache's first vhost) is not a claim: it
    answers names nobody claims.
    """
    wanted = name.lower().rstrip(".")
    found: list[Claim] = []
    for server in config.servers:
        listens = server.on_port(port)
        if not listens:
            continue
        best: tuple[MatchKind, str] | None = None
        for pattern in server.names:
            kind = _match(pattern, wanted)
            if kind is not None and (best is None or _ORDER[kind] < _ORDER[best[0]]):
                best = (kind, pattern)
        if best is not None:
            found.append(Claim(server, name, port, best[0], best[1], any(x.ssl for x in listens)))
    found.sort(key=lambda c: _ORDER[c.match])
    return found


def sole_claim(config: ConfigMap, name: str, port: int) -> Claim | None:
    """The virtual server that serves ``name`` on ``port`` (``None``: nobody claims it).

    Raises:
        ServerConfigError: two enabled virtual servers claim the name equally (both exact, or
            the same wildcard); the one line names both ``file:line``s.
    """
    found = claims(config, name, port)
    if len(found) < 2:
        return found[0] if found else None
    first, second = found[0], found[1]
    same_rank = first.match == second.match and (
        first.match == "exact" or first.pattern.lower() == second.pattern.lower()
    )
    if same_rank and first.where != second.where:
        raise ServerConfigError(
            f"{first.where} and {second.where} both claim {name} on port {port} "
            f"({config.server} serves only the first)",
            hint="disable one of them or remove the name from one, then run again",
        )
    return first
