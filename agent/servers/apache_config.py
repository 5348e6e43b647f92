"""Apache's virtual-host map from ``apache2ctl -S`` / ``httpd -S`` and ``-t -D DUMP_INCLUDES``.

``-S`` (``-t -D DUMP_VHOSTS -D DUMP_RUN_CFG``) prints, per address, the virtual hosts with their
``file:line``, names and aliases, then ``ServerRoot``, ``Main ErrorLog`` and ``PidFile``;
``-t -D DUMP_INCLUDES`` prints the tree of files it loaded (each with the line of its parent that
included it). Debian's ``apache2ctl`` and RHEL's ``httpd`` print the same shapes (both are
httpd's ``vhost.c``/``config.c`` dumps). ``-S`` does not say which virtual hosts proxy, have a
document root or a certificate: :func:`with_details` reads that from the files' texts.

Which directories the main config includes comes from its ``Include``/``IncludeOptional``
lines (:func:`main_includes`): the dump lists files, not the globs that would load a new one.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import replace

from agent.errors import ServerConfigError
from agent.servers.configmap import ConfigMap, Include, Listen, VirtualServer

_WHERE = r"\((?P<file>/[^()]*?):(?P<line>\d+)\)\s*$"
_NAMED = re.compile(r"^\s+(?:port (?P<port>\d+) namevhost|default server) (?P<name>\S+) " + _WHERE)
_SINGLE = re.compile(r"^(?P<addr>\S+:\d+|\S+)\s+(?P<name>\S+) " + _WHERE)
_ADDRESS = re.compile(r"^(?P<addr>\S+)\s+is a NameVirtualHost\s*$")
_ALIAS = re.compile(r"^\s+(?:wild )?alias (?P<name>\S+)\s*$")
_SETTING = re.compile(r'^(?P<key>ServerRoot|Main ErrorLog|PidFile): "(?P<value>[^"]*)"\s*$')
_INCLUDED = re.compile(r"^(?P<indent>\s*)\((?P<line>\*|\d+)\) (?P<path>/.*?)\s*$")
_INCLUDE_LINE = re.compile(r"^\s*(?:Include|IncludeOptional)\s+(?P<arg>\"[^\"]+\"|\S+)", re.I)
_SECTION = re.compile(r"^\s*<(?P<close>/)?(?P<name>[A-Za-z]+)")


def lines_of(text: str) -> list[str]:
    """``text`` cut after each line feed (ends kept): the servers count lines by ``\n`` only,
    where ``str.splitlines`` would also cut at ``\r``, form feeds and the like."""
    return text.split("\n") if "\n" not in text else [x for x in re.split(r"(?<=\n)", text) if x]


def _listen(addr: str) -> Listen:
    host, _, port = addr.rpartition(":")
    if not port.isdigit():
        return Listen(addr, 0)
    return Listen(host if host not in ("", "_default_") else "*", int(port))


def parse_vhosts(output: str) -> tuple[tuple[VirtualServer, ...], dict[str, str]]:
    """``-S`` stdout -> (virtual hosts in order, settings ``ServerRoot``/``Main ErrorLog``/
    ``PidFile``). A virtual host on several addresses is one :class:`VirtualServer`."""
    hosts: dict[tuple[str, int], dict[str, object]] = {}
    settings: dict[str, str] = {}
    address = ""
    last: dict[str, object] | None = None

    def add(addr: str, name: str, file: str, line: int, default: bool) -> dict[str, object]:
        entry = hosts.setdefault((file, line), {"names": [name], "listens": []})
        listens = entry["listens"]
        assert isinstance(listens, list)
        listen = _listen(addr)
        listen = replace(listen, default_server=default)
        for index, seen in enumerate(listens):
            if (seen.address, seen.port) == (listen.address, listen.port):
                listens[index] = replace(seen, default_server=seen.default_server or default)
                return entry
        listens.append(listen)
        return entry

    for line in output.splitlines():
        if match := _SETTING.match(line):
            settings[match["key"]] = match["value"]
        elif match := _ADDRESS.match(line):
            address, last = match["addr"], None
        elif match := _NAMED.match(line):
            default = match["port"] is None
            last = add(address, match["name"], match["file"], int(match["line"]), default)
        elif match := _ALIAS.match(line):
            if last is not None:
                names = last["names"]
                assert isinstance(names, list)
                if match["name"] not in names:
                    names.append(match["name"])
        elif match := _SINGLE.match(line):
            address = ""
            last = add(match["addr"], match["name"], match["file"], int(match["line"]), True)
    servers = tuple(
        VirtualServer(file, line, tuple(entry["listens"]), tuple(entry["names"]))  # type: ignore[arg-type]
        for (file, line), entry in hosts.items()
    )
    return servers, settings


def parse_includes(output: str) -> tuple[str, tuple[str, ...], tuple[Include, ...]]:
    """``-t -D DUMP_INCLUDES`` stdout -> (main config, files in load order, one
    :class:`Include` per included file naming its parent and line).

    Raises:
        ServerConfigError: the output lists no main config (``(*) PATH``).
    """
    main = ""
    files: list[str] = []
    includes: list[Include] = []
    parents: list[tuple[int, str]] = []  # (indent, file) of the open ancestors
    for line in output.splitlines():
        match = _INCLUDED.match(line)
        if not match:
            continue
        indent, path = len(match["indent"]), match["path"]
        while parents and parents[-1][0] >= indent:
            parents.pop()
        if match["line"] == "*":
            main = main or path
        elif parents:
            includes.append(Include(path, parents[-1][1], int(match["line"]), "main"))
        files.append(path)
        parents.append((indent, path))
    if not main:
        raise ServerConfigError(
            "no main configuration file in the include dump",
            hint="is this the stdout of apache2ctl -t -D DUMP_INCLUDES?",
        )
    return main, tuple(files), tuple(includes)


def main_includes(text: str, file: str, server_root: str) -> tuple[Include, ...]:
    """The ``Include``/``IncludeOptional`` globs of a main config's text (resolved against
    ``ServerRoot``); the context is the innermost section (``main`` outside any, else the
    section's name lower-cased, e.g. ``virtualhost``; ``<IfModule>``/``<IfDefine>`` do not count)."""
    found: list[Include] = []
    sections: list[str] = []
    for number, line in enumerate(text.split("\n"), 1):
        section = _SECTION.match(line)
        if section:
            name = section["name"].lower()
            if section["close"]:
                if sections:
                    sections.pop()
            else:
                sections.append(name)
            continue
        match = _INCLUDE_LINE.match(line)
        if match:
            arg = match["arg"].strip('"')
            pattern = posixpath.normpath(posixpath.join(server_root, arg))
            real = [s for s in sections if s not in ("ifmodule", "ifdefine", "ifversion")]
            found.append(Include(pattern, file, number, real[-1] if real else "main"))
    return tuple(found)


def parse_apache(
    vhosts_output: str, includes_output: str, main_text: str | None = None
) -> ConfigMap:
    """The effective configuration from ``-S`` stdout, ``-t -D DUMP_INCLUDES`` stdout and,
    when given, the main config's text (for the globs it includes, see :func:`main_includes`).

    Raises:
        ServerConfigError: the include dump lists no main config.
    """
    servers, settings = parse_vhosts(vhosts_output)
    main, files, included = parse_includes(includes_output)
    root = settings.get("ServerRoot") or posixpath.dirname(main)
    globs = main_includes(main_text, main, root) if main_text is not None else ()
    return ConfigMap(
        server="apache",
        main_config=main,
        files=files,
        includes=globs + included,
        servers=servers,
        error_log=settings.get("Main ErrorLog"),
        pid_file=settings.get("PidFile"),
        server_root=root,
    )


def vhost_span(text: str, line: int, where: str = "") -> tuple[int, int]:
    """Line indexes (0-based, end exclusive) of the ``<VirtualHost>`` block starting at
    1-based ``line`` of ``text``, closing tag included.

    Raises:
        ServerConfigError: no ``<VirtualHost`` on that line, or no ``</VirtualHost>`` after it.
    """
    lines = text.split("\n")
    start = line - 1
    if not 0 <= start < len(lines) or not lines[start].lstrip().lower().startswith("<virtualhost"):
        raise ServerConfigError("no <VirtualHost> starts on this line", where=f"{where}:{line}")
    for index in range(start + 1, len(lines)):
        if lines[index].strip().lower().startswith("</virtualhost"):
            return start, index + 1
    raise ServerConfigError("<VirtualHost> is never closed", where=f"{where}:{line}")


def with_details(config: ConfigMap, texts: Mapping[str, str]) -> ConfigMap:
    """``config`` with ``proxy_pass``, ``root``, ``certificate``, the ``ServerAlias`` names
    (``-S`` lists none for the only virtual host of an address) and ``ssl`` on every listen
    of a virtual host with ``SSLEngine on``, read from the files' ``texts`` (path -> text);
    virtual hosts whose file is not given keep ``None``.

    Raises:
        ServerConfigError: a file does not have a ``<VirtualHost>`` where ``-S`` said.
    """
    servers: list[VirtualServer] = []
    for server in config.servers:
        text = texts.get(server.file)
        if text is None:
            servers.append(server)
            continue
        start, end = vhost_span(text, server.line, server.file)
        words = [line.split() for line in text.split("\n")[start + 1 : end - 1]]
        keys = [(w[0].lower(), [a.lower() for a in w[1:]]) for w in words if w]
        ssl = any(k == "sslengine" and args[:1] == ["on"] for k, args in keys)
        # -S lists no aliases for the only vhost of an address; and a vhost without its own
        # ServerName shows the inherited one (the global ServerName, else the machine's
        # hostname): such a vhost is a catch-all, not a claim on that name
        own_name = any(k == "servername" for k, _ in keys)
        names = list(server.names) if own_name else []
        for w in words:
            if w and w[0].lower() in ("servername", "serveralias"):
                names.extend(n for n in w[1:] if n not in names)
        servers.append(
            replace(
                server,
                listens=tuple(replace(x, ssl=ssl) for x in server.listens),
                names=tuple(names),
                proxy_pass=any(k == "proxypass" and "!" not in args for k, args in keys),
                root=any(k == "documentroot" for k, _ in keys),
                certificate=any(k == "sslcertificatefile" for k, _ in keys),
            )
        )
    return replace(config, servers=tuple(servers))
