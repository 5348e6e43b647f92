"""nginx adapter (Debian layout: ``sites-available/`` + symlink in ``sites-enabled/``; the
``rhel`` layout of :class:`agent.servers.base.Paths`, for every nginx whose main config includes
only ``conf.d/*.conf``: the site file in ``conf.d/``, nothing to link).

The TLS protocol policy problem, and our choice. nginx negotiates the protocol version (and,
in practice, the cipher list and groups) with the settings of the *default server* of the
listening socket: SNI switches the certificate to the named server's, not its
``ssl_protocols``. Verified on nginx 1.22.1 / OpenSSL 3.0: a non-default server saying
``ssl_protocols TLSv1.3;`` still accepts TLS 1.2 for its own name. Debian's ``nginx.conf`` sets
``ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;`` and ``ssl_prefer_server_ciphers on;`` at
``http{}`` level, and a second ``ssl_prefer_server_ciphers`` in ``conf.d/`` is fatal
(duplicate) while a second ``ssl_protocols`` is *merged*, not replaced.

Two ways out were considered: making our server the ``default_server`` of its TLS address
(breaks as soon as two sites or an operator's own default share the address: nginx refuses a
duplicate default), or owning the ``http{}``-level policy. We own the policy:

* ``conf.d/origin-agent-tls.conf`` (our whole file, ``templates/nginx/tls-policy.conf.j2``)
  sets protocols, ciphers, groups and session settings for every server of the host;
* :meth:`NginxAdapter.edit_main_config` comments out, in ``nginx.conf``'s ``http{}`` block
  only, the directives that policy file sets (Debian's two lines, plus any of the others an
  operator added), marks each with ``# origin-agent:``, and adds an ``include`` of the policy
  file if ``conf.d/*.conf`` is not included. It is a pure text function, idempotent, and the
  caller writes the result as a normal file change (diffable, rolled back with the rest).

Every server block we render repeats its profile's protocols and ciphers too, which is what
counts when it *is* the default server, and documents intent otherwise. One host has one
protocol policy: sites on one host should share a profile.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import ClassVar

from agent.errors import ServerConfigError
from agent.servers.base import (
    ConfigProblem,
    EnableStep,
    ServerAdapter,
    ServerName,
)
from agent.servers.configmap import ConfigMap
from agent.servers.nginx_config import parse_dump
from agent.servers.site import SiteSpec
from agent.transport.changes import SwapSymlink

MANAGED_DIRECTIVES = (
    "ssl_protocols",
    "ssl_ciphers",
    "ssl_ecdh_curve",
    "ssl_prefer_server_ciphers",
    "ssl_session_timeout",
    "ssl_session_cache",
    "ssl_session_tickets",
    "ssl_conf_command",
)
MARK = "# origin-agent:"
_EMERG = re.compile(
    r"\[emerg\] (?:\d+#\d+: )?(?P<msg>.*?)(?: in (?P<file>/\S+?):(?P<line>\d+))?\s*$", re.M
)


def _code(line: str) -> str:
    """``line`` without its comment (a ``#`` outside quotes)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


class NginxAdapter(ServerAdapter):
    """nginx on Debian (see the module docstring for the TLS policy choice)."""

    name: ClassVar[ServerName] = "nginx"

    def _c(self) -> list[str]:
        return [] if self.paths.is_default else ["-c", self.paths.main_config]

    def enable_steps(self, name: str, site: SiteSpec | None = None) -> list[EnableStep]:
        if self.paths.sites_enabled == self.paths.sites_available:  # conf.d/: nothing to link
            return []
        return [SwapSymlink(self.enabled_path(name), self.site_path(name))]

    def dump_argvs(self) -> list[list[str]]:
        return [[self.paths.binary, "-T", *self._c()]]

    def parse_config(self, outputs: Sequence[str], main_text: str | None = None) -> ConfigMap:
        return parse_dump(outputs[0])

    def test_argv(self) -> list[str]:
        return [self.paths.binary, "-t", *self._c()]

    def reload_argv(self, systemd: bool) -> list[str]:
        if systemd and self.paths.is_default:
            return ["systemctl", "reload", self.paths.service]
        return [self.paths.binary, *self._c(), "-s", "reload"]

    def start_argv(self, systemd: bool = False) -> list[str]:
        if systemd and self.paths.is_default:
            return ["systemctl", "start", self.paths.service]
        return [self.paths.binary, *self._c()]

    def parse_test_output(self, output: str) -> ConfigProblem | None:
        match = _EMERG.search(output)
        if match is None:
            return None
        return ConfigProblem(match["file"] or "", int(match["line"] or 0), match["msg"].strip())

    def _policy_included(self, pattern: str) -> bool:
        if not pattern.startswith("/"):
            pattern = f"{self.paths.conf_dir}/{pattern}"
        return fnmatch.fnmatchcase(self.paths.policy_file, pattern)

    def edit_main_config(self, text: str, site: SiteSpec | None = None) -> str:
        """Hand the ``http{}``-level TLS policy to our policy file (see the module docstring).

        Raises:
            ServerConfigError: no ``http{}`` block, or a managed directive we cannot comment out
                on its own (shares its line with another statement or spans lines).
        """
        where = self.paths.main_config
        lines = text.splitlines(keepends=True)
        out: list[str] = []
        stack: list[str] = []
        pending = ""  # text of the statement begun on earlier lines
        http_line = -1
        included = False
        for number, line in enumerate(lines, 1):
            code = _code(line).strip()
            words = code.split()
            if stack == ["http"] and not pending and words:
                directive = words[0].rstrip(";")
                if directive in MANAGED_DIRECTIVES:
                    out.append(self._taken_over(line, code, directive, f"{where}:{number}"))
                    continue
                if (
                    directive == "include"
                    and len(words) >= 2
                    and self._policy_included(words[1].rstrip(";"))
                ):
                    included = True
            out.append(line)
            pending, opened_http = _follow_blocks(code, pending, stack)
            if opened_http:
                http_line = len(out)
        if http_line < 0:
            raise ServerConfigError("no http { } block found", where=where)
        if not included:
            out.insert(
                http_line,
                f"\t{MARK} TLS policy for every server\n\tinclude {self.paths.policy_file};\n",
            )
        return "".join(out)

    def _taken_over(self, line: str, code: str, directive: str, where: str) -> str:
        """``line`` (a managed directive) commented out with our mark.

        Raises:
            ServerConfigError: the directive shares its line or spans lines.
        """
        if not code.endswith(";") or code.count(";") != 1 or "{" in code or "}" in code:
            raise ServerConfigError(
                f"cannot take over {directive!r}: put it on a line of its own", where=where
            )
        indent = line[: len(line) - len(line.lstrip())]
        eol = "\n" if line.endswith("\n") else ""
        return f"{indent}{MARK} {line.strip()}  (set in {self.paths.policy_file}){eol}"


def _follow_blocks(code: str, pending: str, stack: list[str]) -> tuple[str, bool]:
    """Follow the braces of one line's ``code``: push each block's first word on ``stack``,
    pop at its end. Returns the statement still open at the end of the line, and whether a
    top-level ``http`` block was opened on it."""
    opened_http = False
    statement = pending + " " if pending else ""
    for ch in code:
        if ch == "{":
            head = statement.split()
            stack.append(head[0] if head else "")
            if stack == ["http"]:
                opened_http = True
            statement = ""
        elif ch == "}":
            if stack:
                stack.pop()
            statement = ""
        elif ch == ";":
            statement = ""
        else:
            statement += ch
    return statement.strip(), opened_http
