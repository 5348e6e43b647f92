"""Apache 2.4 adapter: Debian's layout, driven through ``apache2ctl`` and ``a2enmod``/``a2ensite``,
or RHEL's (``Paths.for_server("apache", {"layout": "rhel"})``): ``httpd`` itself (``-t``,
``-k graceful``; ``-d``/``-f`` when not in ``/etc/httpd``), site files in ``conf.d/``.

Debian's ``apache2`` binary needs the variables from ``envvars``, so every command goes through
``apache2ctl`` (which reads them); a non-default ``conf_dir`` is passed the Debian way, as
``APACHE_CONFDIR`` (honoured by ``apache2ctl``, ``a2enmod``, ``a2ensite``, ``a2enconf``).

The host-wide TLS policy is ``conf-available/origin-agent-tls.conf`` (enabled with ``a2enconf``);
``conf-enabled/`` is included after ``mods-enabled/ssl.conf``, so its ``SSLProtocol`` and
``SSLCipherSuite`` replace Debian's ``all -SSLv3`` / ``HIGH:!aNULL`` for every virtual host
that does not set its own, and each of our virtual hosts sets its profile as well.

``Listen`` lines live in ``ports.conf``: :meth:`ApacheAdapter.edit_main_config` makes sure the
site's HTTP and HTTPS ports are listened on, on ``listen_address`` when one is given (lab hosts
share one network namespace, so a wildcard ``Listen 443`` there is rewritten to the address).

Beware (verified): ``apache2ctl -t`` does not load certificates or keys; a graceful restart
with a key that does not match its certificate makes Apache exit. Check the pair before
reloading, and use :meth:`start_argv` to bring it back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from agent.servers.apache_config import parse_apache
from agent.servers.base import (
    POLICY_NAME,
    ConfigProblem,
    EnableStep,
    ServerAdapter,
    ServerName,
)
from agent.servers.configmap import ConfigMap
from agent.servers.site import SiteSpec
from agent.transport.changes import RunCommand

MODULES = ("ssl", "headers")
PROXY_MODULES = ("proxy", "proxy_http")
MARK = "# origin-agent:"
_LISTEN = re.compile(r"^(?P<indent>\s*)Listen\s+(?P<addr>\S+?)(?P<proto>\s+\S+)?\s*$", re.I)
_SYNTAX = re.compile(r"Syntax error on line (?P<line>\d+) of (?P<file>/\S+?):\s*\n?(?P<msg>[^\n]*)")
_AH_ERROR = re.compile(r"^(?P<msg>AH\d+: .*)$", re.M)
_WILDCARD_HOSTS = ("", "*", "0.0.0.0", "[::]")


def _split_listen(value: str) -> tuple[str, str]:
    """``Listen`` argument -> (host, port); host is "" for a bare port."""
    if value.startswith("["):
        host, _, port = value.rpartition(":")
        return host, port
    if ":" in value:
        host, _, port = value.partition(":")
        return host, port
    return "", value


class ApacheAdapter(ServerAdapter):
    """Apache 2.4 on Debian."""

    name: ClassVar[ServerName] = "apache"

    @property
    def debian(self) -> bool:
        """Debian's apache2 (``apache2ctl``, envvars, ``a2en*``), not RHEL's ``httpd``."""
        return self.paths.layout == "debian"

    def _env(self) -> list[str]:
        if self.paths.conf_dir == "/etc/apache2" or not self.debian:
            return []
        return ["env", f"APACHE_CONFDIR={self.paths.conf_dir}"]

    def _httpd(self) -> list[str]:
        """RHEL's binary with ``-d``/``-f`` when the paths are not the default ones."""
        if self.paths.is_default:
            return [self.paths.binary]
        return [self.paths.binary, "-d", self.paths.conf_dir, "-f", self.paths.main_config]

    def _tool(self, tool: str) -> str:
        return f"{self.paths.tools_dir}/{tool}"

    def enable_steps(self, name: str, site: SiteSpec | None = None) -> list[EnableStep]:
        """Debian: ``a2enmod`` (ssl, headers, and proxy, proxy_http for a site with an
        ``upstream``), ``a2enconf`` of the policy, ``a2ensite``. RHEL: nothing (``conf.d/`` is
        included; mod_ssl and mod_proxy are loaded by ``conf.modules.d/``)."""
        if not self.debian:
            return []
        conf = self.paths.conf_dir
        modules = MODULES + (PROXY_MODULES if site is not None and site.upstream else ())
        return [
            RunCommand(
                (*self._env(), self._tool("a2enmod"), "-q", *modules),
                unless=tuple(("test", "-e", f"{conf}/mods-enabled/{m}.load") for m in modules),
            ),
            RunCommand(
                (*self._env(), self._tool("a2enconf"), "-q", POLICY_NAME),
                unless=(("test", "-e", f"{conf}/conf-enabled/{POLICY_NAME}.conf"),),
            ),
            RunCommand(
                (*self._env(), self._tool("a2ensite"), "-q", name),
                unless=(("test", "-e", self.enabled_path(name)),),
            ),
        ]

    def dump_argvs(self) -> list[list[str]]:
        if self.debian:
            prefix = [*self._env(), self.paths.ctl]
        else:
            prefix = self._httpd()
        return [[*prefix, "-S"], [*prefix, "-t", "-D", "DUMP_INCLUDES"]]

    def parse_config(self, outputs: Sequence[str], main_text: str | None = None) -> ConfigMap:
        return parse_apache(outputs[0], outputs[1], main_text)

    def test_argv(self) -> list[str]:
        if not self.debian:
            return [*self._httpd(), "-t"]
        return [*self._env(), self.paths.ctl, "configtest"]

    def reload_argv(self, systemd: bool) -> list[str]:
        if systemd and self.paths.is_default:
            return ["systemctl", "reload", self.paths.service]
        if not self.debian:
            return [*self._httpd(), "-k", "graceful"]
        return [*self._env(), self.paths.ctl, "graceful"]

    def start_argv(self, systemd: bool = False) -> list[str]:
        if systemd and self.paths.is_default:
            return ["systemctl", "start", self.paths.service]
        if not self.debian:
            return [*self._httpd(), "-k", "start"]
        return [*self._env(), self.paths.ctl, "start"]

    def parse_test_output(self, output: str) -> ConfigProblem | None:
        match = _SYNTAX.search(output)
        if match:
            return ConfigProblem(match["file"], int(match["line"]), match["msg"].strip())
        ah = _AH_ERROR.search(output)
        if ah:
            return ConfigProblem("", 0, ah["msg"].strip())
        return None

    @property
    def main_config_path(self) -> str:
        return self.paths.ports_config

    def edit_main_config(self, text: str, site: SiteSpec) -> str:
        """``ports.conf`` with ``Listen`` lines covering the site's two ports (RHEL layout:
        ``conf.d/ssl.conf``, mod_ssl's, covering the HTTPS port; the HTTP port is
        ``httpd.conf``'s ``Listen 80``, which a second ``Listen`` would make fatal).

        With ``listen_address``: a ``Listen ADDRESS:PORT`` is kept, a wildcard ``Listen PORT``
        is rewritten to the address (further wildcards for that port are commented out, as two
        ``Listen`` for one address fail), else one is appended. Without: any active ``Listen``
        on the port will do, else ``Listen PORT`` is appended. Lines inside ``<IfModule>``
        blocks other than mod_ssl's (e.g. ``mod_gnutls.c``) are left alone.
        """
        lines = text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        active: list[tuple[int, str, str]] = []  # (index, host, port)
        modules: list[str] = []
        for index, line in enumerate(lines):
            stripped = line.strip()
            if stripped.lower().startswith("<ifmodule"):
                modules.append(stripped[9:].strip(" >").lstrip("!"))
            elif stripped.lower().startswith("</ifmodule"):
                if modules:
                    modules.pop()
            elif all(m in ("ssl_module", "mod_ssl.c") for m in modules):
                match = _LISTEN.match(line)
                if match:
                    host, listen_port = _split_listen(match["addr"])
                    active.append((index, host, listen_port))
        address = site.listen_address
        wanted = f"[{address}]" if address and ":" in address else address
        appended: list[str] = []
        managed = [(site.http_port, "")] if self.debian else []  # RHEL: httpd.conf's Listen 80
        managed.append((site.https_port, "" if site.https_port == 443 else " https"))
        for port, proto in managed:
            on_port = [(i, h) for i, h, p in active if p == str(port)]
            if wanted is None:
                if not on_port:
                    appended.append(f"Listen {port}{proto}\n")
                continue
            if any(h == wanted for _, h in on_port):
                continue
            wild = [i for i, h in on_port if h in _WILDCARD_HOSTS]
            if not wild:
                appended.append(f"Listen {wanted}:{port}{proto}\n")
                continue
            first = _LISTEN.match(lines[wild[0]])
            assert first is not None
            indent = first["indent"]
            lines[wild[0]] = (
                f"{indent}{MARK} was: {lines[wild[0]].strip()}\n"
                f"{indent}Listen {wanted}:{port}{first['proto'] or ''}\n"
            )
            for i in wild[1:]:
                lines[i] = f"{MARK} {lines[i].strip()}\n"
        if appended:
            lines.append(f"{MARK} listeners for site {site.name}\n")
            lines.extend(appended)
        return "".join(lines)
