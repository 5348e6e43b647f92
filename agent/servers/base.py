"""The :class:`ServerAdapter` interface: what a web server needs for one TLS site.

An adapter returns text (rendered configs) and argv lists (config test, reload, start, enable)
and never runs anything: the caller runs the argv through its transport. Paths are Debian's by
default; each one can be overridden from inventory vars (``server_paths: {conf_dir: ...}``),
and paths not given follow ``conf_dir``.

Order of a deployment (each step a normal file change or argv for the caller):
1. the policy file (:meth:`ServerAdapter.render_policy` at ``paths.policy_file``), 2. the site
file (:meth:`ServerAdapter.render_site` at :meth:`ServerAdapter.site_path`), 3. the main config
(:meth:`ServerAdapter.edit_main_config` of ``main_config_path``; it may include the policy
file, so that must exist first), 4. :meth:`ServerAdapter.enable_steps` (``a2enconf`` needs the
policy file), 5. :meth:`ServerAdapter.test_argv`, 6. :meth:`ServerAdapter.reload_argv`, then
probe (:mod:`agent.pki.probe`, :func:`agent.pki.modes.deployment_problems`).

Templates come from ``templates/<server>/`` (``TEMPLATES_DIR``: the repository root's, or the
installed copy, see :mod:`agent.resources`).

Detection is a fact like any other: :func:`detect_argv` lists which of the servers' binaries
and config directories exist, :func:`parse_detect` turns that listing into server names.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

from agent.errors import ValidationError
from agent.registry import Loader, lazy, lookup
from agent.servers.configmap import ConfigMap
from agent.servers.errorlog import server_errors
from agent.servers.site import SiteSpec
from agent.servers.templating import TEMPLATES_DIR as TEMPLATES_DIR  # re-exported
from agent.servers.templating import render_template as render_template  # re-exported
from agent.transport.changes import RunCommand, SwapSymlink
from agent.validate import check_path

ServerName = Literal["nginx", "apache"]
POLICY_NAME = "origin-agent-tls"
SYSTEMD_PROBE_ARGV: tuple[str, ...] = ("test", "-d", "/run/systemd/system")
"""Exit 0 where systemd is PID 1 (``sd_booted()``'s test)."""

_DEBIAN: dict[str, dict[str, str]] = {
    "nginx": {
        "binary": "/usr/sbin/nginx",
        "ctl": "",
        "conf_dir": "/etc/nginx",
        "main_config": "{conf_dir}/nginx.conf",
        "ports_config": "",
        "sites_available": "{conf_dir}/sites-available",
        "sites_enabled": "{conf_dir}/sites-enabled",
        "policy_file": "{conf_dir}/conf.d/" + POLICY_NAME + ".conf",
        "tools_dir": "/usr/sbin",
        "pid_file": "/run/nginx.pid",
        "error_log": "/var/log/nginx/error.log",
        "cert_root": "/etc/ssl/origin-agent",
    },
    "apache": {
        "binary": "/usr/sbin/apache2",
        "ctl": "/usr/sbin/apache2ctl",
        "conf_dir": "/etc/apache2",
        "main_config": "{conf_dir}/apache2.conf",
        "ports_config": "{conf_dir}/ports.conf",
        "sites_available": "{conf_dir}/sites-available",
        "sites_enabled": "{conf_dir}/sites-enabled",
        "policy_file": "{conf_dir}/conf-available/" + POLICY_NAME + ".conf",
        "tools_dir": "/usr/sbin",
        "pid_file": "/run/apache2/apache2.pid",
        "error_log": "/var/log/apache2/error.log",
        "cert_root": "/etc/ssl/origin-agent",
    },
}
# RHEL/Alma/Rocky (and, for nginx, the nginx.org packages, Alpine and the container image):
# no sites-* folders, everything in conf.d/; httpd is driven directly (no envvars, no a2en*).
_CONF_D: dict[str, dict[str, str]] = {
    "nginx": {
        **_DEBIAN["nginx"],
        "sites_available": "{conf_dir}/conf.d",
        "sites_enabled": "{conf_dir}/conf.d",
    },
    "apache": {
        "binary": "/usr/sbin/httpd",
        "ctl": "/usr/sbin/apachectl",
        "conf_dir": "/etc/httpd",
        "main_config": "{conf_dir}/conf/httpd.conf",
        "ports_config": "{conf_dir}/conf.d/ssl.conf",  # mod_ssl's Listen 443 https
        "sites_available": "{conf_dir}/conf.d",
        "sites_enabled": "{conf_dir}/conf.d",
        "policy_file": "{conf_dir}/conf.d/" + POLICY_NAME + ".conf",
        "tools_dir": "/usr/sbin",
        "pid_file": "/run/httpd/httpd.pid",
        "error_log": "/var/log/httpd/error_log",
        "cert_root": "/etc/pki/tls/origin-agent",
    },
}
Layout = Literal["debian", "rhel"]
LAYOUTS: dict[str, dict[str, dict[str, str]]] = {"debian": _DEBIAN, "rhel": _CONF_D}
_DEFAULTS = _DEBIAN
_SERVICES = {("debian", "nginx"): "nginx", ("debian", "apache"): "apache2"}
_SERVICES |= {("rhel", "nginx"): "nginx", ("rhel", "apache"): "httpd"}


@dataclass(frozen=True)
class Paths:
    """Where a server's files and programs are on the origin (all absolute, validated)."""

    server: ServerName
    binary: str
    ctl: str
    conf_dir: str
    main_config: str
    ports_config: str
    sites_available: str
    sites_enabled: str
    policy_file: str
    tools_dir: str
    pid_file: str = ""
    error_log: str = ""
    cert_root: str = "/etc/ssl/origin-agent"
    layout: Layout = "debian"

    @property
    def service(self) -> str:
        """The systemd unit / init script name."""
        return _SERVICES[(self.layout, self.server)]

    @property
    def is_default(self) -> bool:
        return self == Paths.for_server(self.server, {"layout": self.layout})

    @classmethod
    def for_server(
        cls,
        server: ServerName,
        overrides: Mapping[str, Any] | None = None,
        *,
        where: str = "server_paths",
    ) -> Paths:
        """The paths of ``server`` in a layout (``layout`` key of ``overrides``: ``debian``, the
        default, or ``rhel``: ``conf.d/`` only, as RHEL, the nginx.org packages, Alpine and the
        container image have it) with the other ``overrides`` applied.

        Raises:
            ValidationError: unknown server, layout or key, or a path that is not a plain
                absolute path.
        """
        if server not in _DEFAULTS:
            raise ValidationError(f"unknown web server {server!r} (nginx or apache)", where=where)
        overrides = dict(overrides or {})
        layout = overrides.pop("layout", "debian")
        if layout not in LAYOUTS:
            raise ValidationError(
                f"unknown layout {layout!r} ({' or '.join(LAYOUTS)})", where=f"{where}: layout"
            )
        known = [f.name for f in fields(cls) if f.name not in ("server", "layout")]
        for key, value in overrides.items():
            if key not in known:
                raise ValidationError(
                    f"unknown key {key!r}",
                    where=where,
                    hint=f"accepted: {', '.join([*known, 'layout'])}",
                )
            check_path(value, where=f"{where}: {key}")
        defaults = LAYOUTS[layout][server]
        values = {key: overrides.get(key, default) for key, default in defaults.items()}
        conf_dir = values["conf_dir"].rstrip("/")
        values = {k: v.replace("{conf_dir}", conf_dir) for k, v in values.items()}
        return cls(server=server, layout=layout, **values)


EnableStep = SwapSymlink | RunCommand
"""An enable step: a symlink (``sites-enabled/NAME.conf``) or a command skipped ``unless``
its checks say it is done (``a2enmod``...); the shared change vocabulary."""


@dataclass(frozen=True)
class ConfigProblem:
    """Where a config test failed: file, line (0 if unknown) and the server's message."""

    file: str
    line: int
    message: str


class ServerAdapter(abc.ABC):
    """Paths, rendered configs and argv for one web server (see the module docstring).

    Args:
        paths: where things are on the origin (``Paths.for_server(name)`` by default).
        site_template: a local jinja2 file replacing our ``templates/<server>/site.conf.j2``;
            it gets the same variables (:meth:`SiteSpec.template_vars`).
    """

    name: ClassVar[ServerName]

    def __init__(
        self, paths: Paths | None = None, *, site_template: str | Path | None = None
    ) -> None:
        self.paths = paths if paths is not None else Paths.for_server(self.name)
        if self.paths.server != self.name:
            raise ValidationError(f"paths for {self.paths.server} given to the {self.name} adapter")
        self.site_template = (
            Path(site_template) if site_template else TEMPLATES_DIR / self.name / "site.conf.j2"
        )

    # -- files -------------------------------------------------------------------------
    def site_path(self, name: str) -> str:
        """Where the site's config file lives (``sites-available/NAME.conf``)."""
        return f"{self.paths.sites_available}/{name}.conf"

    def enabled_path(self, name: str) -> str:
        return f"{self.paths.sites_enabled}/{name}.conf"

    def render_site(self, site: SiteSpec) -> str:
        """The site's whole config file.

        Raises:
            ServerConfigError: the template fails (names the template file and line).
        """
        return rendered(self.site_template, site)

    def render_policy(self, site: SiteSpec) -> str:
        """The host-wide TLS policy file (protocols, ciphers, groups, session settings)."""
        return rendered(TEMPLATES_DIR / self.name / "tls-policy.conf.j2", site)

    def edit_main_config(self, text: str, site: SiteSpec) -> str:
        """Return the server's main config (``paths.main_config``; for Apache
        ``paths.ports_config``) as it must be for ``site``: unchanged text when it already is.

        Raises:
            ServerConfigError: the file is laid out in a way we cannot edit safely.
        """
        return text

    @property
    def main_config_path(self) -> str:
        return self.paths.main_config

    @abc.abstractmethod
    def enable_steps(self, name: str, site: SiteSpec | None = None) -> list[EnableStep]:
        """What makes site ``name`` (and the policy file, and needed modules) active; with
        ``site``, also what its options need (Apache's proxy modules for an ``upstream``)."""

    @property
    def acme_template(self) -> Path:
        """Our HTTP-only site (the ACME http-01 path, before the first certificate)."""
        return TEMPLATES_DIR / self.name / "acme-http.conf.j2"

    def render_acme_site(self, site: SiteSpec) -> str:
        """The HTTP-only site file (written at :meth:`site_path` until the TLS site replaces it).

        Raises:
            ServerConfigError: the template fails.
        """
        return render_template(self.acme_template, site.template_vars())

    @property
    def pid_files(self) -> tuple[str, ...]:
        """Where the running server's pid is (``paths.pid_file``)."""
        return (self.paths.pid_file,) if self.paths.pid_file else ()

    def error_log_path(self, config: ConfigMap | None = None) -> str:
        """The main error log: what the effective config says when known, else ``paths.error_log``."""
        if config is not None and config.error_log and config.error_log.startswith("/"):
            return config.error_log
        return self.paths.error_log

    def server_errors(self, log_text: str, limit: int = 5) -> list[str]:
        """The server's own error lines in ``log_text`` (its error log since the reload), one
        line each, oldest first, at most ``limit`` (see :mod:`agent.servers.errorlog`)."""
        return server_errors(log_text, self.name, limit)

    # -- effective configuration ---------------------------------------------------------
    @abc.abstractmethod
    def dump_argvs(self) -> list[list[str]]:
        """The argvs whose stdouts :meth:`parse_config` reads (nginx: ``nginx -T``; Apache:
        ``-S`` then ``-t -D DUMP_INCLUDES``); each exits 0 when the config is valid."""

    @abc.abstractmethod
    def parse_config(self, outputs: Sequence[str], main_text: str | None = None) -> ConfigMap:
        """The effective configuration from the stdouts of :meth:`dump_argvs` (in order) and,
        for Apache, the text of ``paths.main_config`` (the globs it includes).

        Raises:
            ServerConfigError: the outputs are not what the argvs print.
        """

    # -- commands ----------------------------------------------------------------------
    @abc.abstractmethod
    def test_argv(self) -> list[str]:
        """The config test (exit 0 when the whole configuration is valid)."""

    @abc.abstractmethod
    def reload_argv(self, systemd: bool) -> list[str]:
        """A graceful reload: no connection dropped, old config kept if the new one is broken."""

    @abc.abstractmethod
    def start_argv(self, systemd: bool = False) -> list[str]:
        """Start the server when it is not running (e.g. after a failed Apache graceful)."""

    @abc.abstractmethod
    def parse_test_output(self, output: str) -> ConfigProblem | None:
        """Where the config test failed, from its combined output (``None``: nothing found)."""


def detect_paths(nginx: Paths | None = None, apache: Paths | None = None) -> list[str]:
    """Both servers' binaries and config dirs: the ones that exist tell what is installed."""
    n = nginx or Paths.for_server("nginx")
    a = apache or Paths.for_server("apache")
    return [n.binary, n.conf_dir, a.binary, a.conf_dir]


def detect_argv(nginx: Paths | None = None, apache: Paths | None = None) -> list[str]:
    """``ls`` of :func:`detect_paths`; it exits non-zero when some are missing, which is
    expected: read its stdout with :func:`parse_detect`."""
    return ["ls", "-1d", "--", *detect_paths(nginx, apache)]


def parse_detect(
    output: str, nginx: Paths | None = None, apache: Paths | None = None
) -> tuple[ServerName, ...]:
    """Servers whose binary *and* config dir are listed in ``output`` (stdout of
    :func:`detect_argv`), in the order nginx, apache."""
    listed = {line.strip().rstrip("/") for line in output.splitlines() if line.strip()}
    found: list[ServerName] = []
    for paths in (nginx or Paths.for_server("nginx"), apache or Paths.for_server("apache")):
        if paths.binary in listed and paths.conf_dir.rstrip("/") in listed:
            found.append(paths.server)
    return tuple(found)


@functools.lru_cache(maxsize=4096)
def rendered(template: Path, site: SiteSpec) -> str:
    """``template`` rendered for ``site``, once: the plan's check, the module's argument check
    and the gather each want the same text for a host (templates do not change during a run;
    an error is not kept, the next call raises it again)."""
    return render_template(template, site.template_vars())


def adapter_for(
    server: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    site_template: str | None = None,
    where: str = "server_paths",
) -> ServerAdapter:
    """The adapter for ``server`` ("nginx" or "apache"; "apache2" accepted) with path overrides.

    Raises:
        ValidationError: unknown server, bad override.
    """
    key = "apache" if server == "apache2" else server
    cls: type[ServerAdapter] = lookup(ADAPTERS, key, kind="web server", where=where)
    paths = Paths.for_server(cls.name, overrides, where=where)
    return cls(paths, site_template=site_template)


ADAPTERS: dict[str, Loader] = {
    "nginx": lazy("agent.servers.nginx:NginxAdapter"),
    "apache": lazy("agent.servers.apache:ApacheAdapter"),
}
"""Server name -> loader of its adapter class (:mod:`agent.registry`'s pattern)."""
