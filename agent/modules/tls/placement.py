"""Where the TLS site goes on an origin that may already serve the names: pure decisions from
the server's effective configuration (gathered in the same round trip as every other fact).

* **own**: no enabled site serves the names: our site file, where the main config really
  includes it (``sites-available`` + a link only where ``sites-enabled`` is included, else
  ``conf.d/``), as before; refused before writing when the server would not load it.
* **adopt** (nginx): an operator's enabled server block serves the names on the HTTP port (a
  ``proxy_pass`` to an application, say): our marked lines go into that block, every other byte
  of the operator's file stays as it is; the file is the link's target, never the link.
* **twin** (Apache): a ``:443`` copy of the operator's ``:80`` virtual host, in a file of ours.

Two enabled sites claiming one name refuse the run with one line naming both ``file:line``.
The choice is kept on the origin (``NAME/site-files``: ``KIND PATH CONVENTION``); a site of our
own is not rediscovered on every run (the configuration dump costs the origin and the
controller more than the whole rest of a no-op), an adopted one is (the operator's file is
theirs to change).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from agent.errors import ServerConfigError
from agent.modules.base import ModuleError
from agent.modules.tls.decide import Desired
from agent.modules.tls.facts import OriginFacts
from agent.servers.adopt import adopt_nginx, apache_twin
from agent.servers.apache_config import with_details
from agent.servers.base import ServerAdapter
from agent.servers.configmap import ConfigMap
from agent.servers.layout import choose_site, conf_d_enable, place_site
from agent.transport.changes import RunCommand, SwapSymlink, WriteFile
from agent.validate import check_path

Kind = Literal["own", "adopt", "twin"]
RECORD = "site-files"


@dataclass(frozen=True)
class Placement:
    """Where the site's config lives and how it is enabled."""

    kind: Kind
    path: str  # our site file (own, twin), or the operator's file we edit (adopt)
    convention: str = "sites-enabled"  # or "conf.d"
    operator: str = ""  # adopt/twin: the operator's block, ``file:line``

    def record(self) -> bytes:
        return f"{self.kind} {self.path} {self.convention}\n".encode()


def read_record(data: bytes | None) -> Placement | None:
    """The choice an earlier run kept (``None``: none, or unreadable: decide again)."""
    if not data:
        return None
    parts = data.decode(errors="replace").split()
    if len(parts) != 3 or parts[0] not in ("own", "adopt", "twin"):
        return None
    try:
        check_path(parts[1], where=RECORD)
    except ValueError:
        return None
    return Placement(parts[0], parts[1], parts[2])  # type: ignore[arg-type]


@dataclass(frozen=True)
class ServerView:
    """What the gather script read of one server when it asked for its configuration."""

    outputs: tuple[str, ...]  # stdouts of the adapter's dump_argvs, in order
    links: Mapping[str, str]  # symlink -> target, for the server's site directories


def decode_dump(sections: list[str]) -> tuple[str, ...]:
    """The base64 stdouts of a dump, as text (an undecodable one is empty)."""
    out = []
    for text in sections:
        try:
            out.append(
                base64.b64decode(text.strip() or b"", validate=True).decode(errors="replace")
            )
        except (binascii.Error, ValueError):
            out.append("")
    return tuple(out)


def config_of(
    adapter: ServerAdapter, view: ServerView, files: Mapping[str, bytes | None]
) -> ConfigMap:
    """The server's effective configuration (Apache's with the vhosts' own files read).

    Raises:
        ServerConfigError: the dump is not what the server prints.
    """
    main = files.get(adapter.paths.main_config)
    config = adapter.parse_config(view.outputs, main.decode(errors="replace") if main else None)
    if adapter.name == "apache":
        texts = {
            s.file: (files.get(s.file) or b"").decode(errors="replace")
            for s in config.servers
            if files.get(s.file) is not None
        }
        config = with_details(config, texts)
    return config


def placed(want: Desired, facts: OriginFacts, host: str) -> tuple[Desired, OriginFacts]:
    """``want`` laid out where it belongs on this origin, and the facts completed with the
    current content of the files it now names (read with the configuration dump).

    Raises:
        ModuleError: the placement cannot be decided (see :func:`choose`), nothing written.
    """
    adapter = want.adapter
    before = want
    record = read_record(facts.site_record)
    try:
        if record is not None and record.kind == "own":
            want = settled(want, adapter, record)
        elif facts.dumps.get(adapter.name):
            view = ServerView(decode_dump(list(facts.dumps[adapter.name])), facts.resolved)
            if not any(view.outputs):
                raise ServerConfigError(
                    f"{adapter.name} printed no configuration: its current configuration does "
                    "not pass its own test",
                    hint=f"fix it ({' '.join(adapter.test_argv())} says where), then run again",
                )
            known = {**facts.seen, **{k: v for k, v in facts.files.items() if v is not None}}
            config = config_of(adapter, view, known)
            _, want = choose(want, adapter, config, known, facts.resolved)
    except ServerConfigError as err:
        raise ModuleError(str(err), host=host, hint="nothing written") from err
    missing = {f.path: facts.seen.get(f.path) for f in want.files if f.path not in facts.files}
    return want, replace(
        facts, files={**facts.files, **missing}, checks=_checks(before, want, facts)
    )


def _checks(before: Desired, want: Desired, facts: OriginFacts) -> tuple[bool, ...]:
    """Whether each of ``want``'s enable commands is done: as gathered for the same command,
    else from its ``test -e PATH`` checks against the files read with the dump."""
    gathered = dict(zip((c.argv for c in before.commands), facts.checks, strict=False))
    out = []
    for command in want.commands:
        if command.argv in gathered:
            out.append(gathered[command.argv])
        elif command.unless and all(
            c[:2] == ("test", "-e") and len(c) == 3 for c in command.unless
        ):
            out.append(all(c[2] in facts.seen or c[2] in facts.resolved for c in command.unless))
        else:
            out.append(False)
    return tuple(out)


def choose(
    want: Desired,
    adapter: ServerAdapter,
    config: ConfigMap,
    files: Mapping[str, bytes | None],
    links: Mapping[str, str] | None = None,
) -> tuple[Placement, Desired]:
    """Own, adopt or twin for ``want`` on this server, and ``want`` laid out accordingly.

    Raises:
        ServerConfigError: two enabled sites claim a name; the names are split between sites;
            the server would not load our file; the operator's block cannot be edited safely.
    """
    own = place_site(config, adapter, want.name, want.site)
    twin_at = place_site(config, adapter, f"{want.name}-tls", want.site)
    enabled = (adapter.enabled_path(want.name), adapter.enabled_path(f"{want.name}-tls"))
    choice = choose_site(config, want.site, ours=(*own.paths, *twin_at.paths, *enabled))
    if choice.server is None:
        placement = Placement("own", own.path, own.convention)
        return placement, _own(want, adapter, placement, own.enable)
    server = choice.server
    if adapter.name == "nginx":
        target = (links or {}).get(server.file, server.file)  # edit the target: a link stays one
        text = files.get(server.file) or files.get(target)
        if text is None:
            raise ServerConfigError("cannot read the site file", where=server.where)
        edited = adopt_nginx(text.decode(), server, want.site).encode()
        placement = Placement("adopt", target, own.convention, server.where)
        return placement, _adopted(want, placement, edited)
    text = files.get(server.file)
    if text is None:
        raise ServerConfigError("cannot read the virtual host's file", where=server.where)
    twin = apache_twin(text.decode(), server, want.site).encode()
    placement = Placement("twin", twin_at.path, twin_at.convention, server.where)
    site_file = WriteFile(twin_at.path, twin)
    return placement, _with_files(want, placement, (site_file,), twin_at.enable)


def settled(want: Desired, adapter: ServerAdapter, placement: Placement) -> Desired:
    """``want`` laid out as an earlier run placed our own site (no configuration dump)."""
    if placement.convention == "conf.d":
        steps = conf_d_enable(adapter, want.name, want.site)
    else:
        steps = tuple(adapter.enable_steps(want.name, want.site))
    return _own(want, adapter, placement, steps)


def _own(
    want: Desired,
    adapter: ServerAdapter,
    placement: Placement,
    enable: tuple[SwapSymlink | RunCommand, ...],
) -> Desired:
    site_file = WriteFile(placement.path, adapter.render_site(want.site).encode())
    return _with_files(want, placement, (site_file,), enable)


def _adopted(want: Desired, placement: Placement, edited: bytes) -> Desired:
    # nginx: the operator's file (the link's target, so the link stays a link), our policy
    return _with_files(want, placement, (WriteFile(placement.path, edited),), ())


def _with_files(
    want: Desired,
    placement: Placement,
    site_files: tuple[WriteFile, ...],
    enable: tuple[SwapSymlink | RunCommand, ...],
) -> Desired:
    """``want`` with its site file(s) replaced by the placement's, and the record of it."""
    default_site = want.adapter.site_path(want.name)
    kept = tuple(f for f in want.files if f.path != default_site)
    record = WriteFile(f"{want.cert_root}/{want.name}/{RECORD}", placement.record())
    return replace(
        want,
        placement=placement.kind,
        site_file=placement.path,
        files=(*site_files, *kept, record),
        links=tuple(s for s in enable if isinstance(s, SwapSymlink)),
        commands=tuple(s for s in enable if isinstance(s, RunCommand)),
    )
