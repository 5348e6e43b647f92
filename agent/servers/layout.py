"""Where our site file goes so that the server really loads it, decided before writing, and
whether to write one at all or adopt the operator's site that already serves the names.

:func:`place_site` looks at the include globs of the effective configuration
(:class:`agent.servers.configmap.ConfigMap`): ``sites-available/NAME.conf`` plus a link (or
``a2ensite``) in ``sites-enabled/`` only where the main config includes ``sites-enabled``
(Debian's convention); else ``conf.d/NAME.conf`` where ``conf.d`` is included (nginx.org
packages, RHEL, Alpine, the container image; RHEL's httpd). When neither would be loaded it
says so, naming the main config, before anything is written.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Literal

from agent.errors import ServerConfigError
from agent.servers.base import EnableStep, ServerAdapter
from agent.servers.configmap import ConfigMap, Include, VirtualServer, sole_claim
from agent.servers.site import SiteSpec
from agent.transport.changes import RunCommand, SwapSymlink

Convention = Literal["sites-enabled", "conf.d"]
_CONTEXT = {"nginx": "http", "apache": "main"}


@dataclass(frozen=True)
class SitePlacement:
    """Where a site file of ours goes and how it is enabled.

    Attributes:
        path: the file to write.
        enable: steps that make it active (a symlink or ``a2ensite``...; none in ``conf.d/``).
        include: the include directive that loads it (``file:line`` for messages).
        convention: ``sites-enabled`` or ``conf.d``.
    """

    path: str
    enable: tuple[EnableStep, ...]
    include: Include
    convention: Convention

    @property
    def paths(self) -> tuple[str, ...]:
        """Our file and its links: how the server may name it (``ours`` of :func:`choose_site`)."""
        links = tuple(s.path for s in self.enable if isinstance(s, SwapSymlink))
        return (self.path, *links)


def place_site(
    config: ConfigMap, adapter: ServerAdapter, name: str, site: SiteSpec | None = None
) -> SitePlacement:
    """Where site ``name``'s file goes on this server (see the module docstring).

    Args:
        config: the server's effective configuration (for Apache, parsed with the main
            config's text, or no directory include is known).
        adapter: its adapter (paths of ``sites-*`` and ``conf_dir``).
        name: the site file's name, without ``.conf``.
        site: passed on to :meth:`ServerAdapter.enable_steps` (modules an upstream needs).

    Raises:
        ServerConfigError: the server would load a file neither in ``sites-enabled/`` nor in
            ``conf.d/`` (``where`` is its main config).
    """
    paths = adapter.paths
    context = _CONTEXT[config.server]
    enabled = f"{paths.sites_enabled}/{name}.conf"
    if paths.sites_enabled != paths.sites_available:
        include = config.loads(enabled, context)
        if include is not None:
            steps = tuple(adapter.enable_steps(name, site))
            return SitePlacement(adapter.site_path(name), steps, include, "sites-enabled")
    conf_d = posixpath.join(posixpath.dirname(config.main_config), "conf.d", f"{name}.conf")
    for candidate in dict.fromkeys((f"{paths.conf_dir}/conf.d/{name}.conf", conf_d)):
        include = config.loads(candidate, context)
        if include is not None:
            return SitePlacement(candidate, conf_d_enable(adapter, name, site), include, "conf.d")
    globs = ", ".join(
        i.pattern for i in config.includes if i.context == context and "*" in i.pattern
    )
    dirs = " or ".join(
        f"{d}/" for d in dict.fromkeys((paths.sites_enabled, f"{paths.conf_dir}/conf.d"))
    )
    raise ServerConfigError(
        f"{config.server} would not load a site file in {dirs} "
        f"(it includes {globs or 'no directory'})",
        where=config.main_config,
        hint=f"include one of them in {config.main_config}, or set server_paths",
    )


def conf_d_enable(
    adapter: ServerAdapter, name: str, site: SiteSpec | None = None
) -> tuple[EnableStep, ...]:
    """The enable steps of a site file in ``conf.d/``: the module/policy ones, no site link."""
    return tuple(s for s in adapter.enable_steps(name, site) if _not_site(s, name))


def _not_site(step: EnableStep, name: str) -> bool:
    """Keep the module/policy steps of a Debian Apache, not the site link (conf.d needs none)."""
    if isinstance(step, SwapSymlink):
        return False
    return not (
        isinstance(step, RunCommand) and step.argv[-1:] == (name,) and "a2ensite" in step.argv[-2]
    )


@dataclass(frozen=True)
class SiteChoice:
    """What to do for a site: write our own (``server`` None) or adopt ``server``, the
    operator's enabled block / virtual host that answers ``names`` on the HTTP port."""

    server: VirtualServer | None
    names: tuple[str, ...] = ()

    @property
    def adopt(self) -> bool:
        return self.server is not None


def choose_site(config: ConfigMap, site: SiteSpec, ours: tuple[str, ...] = ()) -> SiteChoice:
    """Adopt the operator's site when one serves the site's names, else write our own.

    Args:
        config: the server's effective configuration.
        site: the site wanted (its names, HTTP and HTTPS ports).
        ours: files that are ours (:attr:`SitePlacement.paths`, an Apache twin's path): a
            claim from one of them is our own earlier run, not an operator's site.

    Raises:
        ServerConfigError: two enabled sites claim one of the names on one port (both
            ``file:line``s named); the names are split between sites, or some served and some
            not; a name is already served over HTTPS by an operator's other block.
    """
    served: dict[str, tuple[VirtualServer, list[str]]] = {}
    unserved: list[str] = []
    for name in site.server_names:
        http = sole_claim(config, name, site.http_port)
        https = sole_claim(config, name, site.https_port)
        if http is None or http.file in ours:
            unserved.append(name)
        else:
            served.setdefault(http.where, (http.server, []))[1].append(name)
        if (
            https is not None
            and https.file not in ours
            and (http is None or https.where != http.where)
        ):
            raise ServerConfigError(
                f"{name} is already served on port {site.https_port} by {https.where}",
                hint="remove that TLS server or the name from the inventory, then run again",
            )
    if not served:
        return SiteChoice(None)
    if len(served) > 1 or unserved:
        parts = [f"{', '.join(names)} by {where}" for where, (_, names) in served.items()]
        parts += [f"{', '.join(unserved)} by none"] if unserved else []
        raise ServerConfigError(
            f"site {site.name}: its names are served by different sites ({'; '.join(parts)})",
            hint="give each served site its own entry with only its names",
        )
    ((server, names),) = served.values()
    return SiteChoice(server, tuple(names))
