"""Add TLS to a site the operator already has, as pure text transforms.

nginx (:func:`adopt_nginx`): the operator's ``server`` block gets our lines, between
``# BEGIN origin-agent`` and ``# END origin-agent``, right after its opening ``{``: a ``listen``
on the HTTPS port for each of its HTTP listens (``ssl http2``, as our templates do), the
certificate and key in the site's ``current/`` directory, the profile's protocols, ciphers and
groups (the host-wide policy file is included from ``nginx.conf`` by
:meth:`agent.servers.nginx.NginxAdapter.edit_main_config`), and the ACME http-01 location unless
the block has one. Every other byte of the file is kept; applying it again gives the same
text; :func:`unadopt_nginx` removes the marked lines and gives the original bytes back. One
block serving both ports means every ``location`` (the ``proxy_pass`` to the application) is
shared, with nothing copied that could drift.

Apache (:func:`apache_twin`): a new file of ours holding a ``:443`` copy of the operator's
``:80`` ``<VirtualHost>`` (every directive kept, redirects to ``https://`` commented out so the
twin does not loop) plus our SSL lines (certbot's approach); the operator's file is untouched.
"""

from __future__ import annotations

import re

from agent.errors import ServerConfigError
from agent.servers.apache_config import lines_of, vhost_span
from agent.servers.configmap import VirtualServer
from agent.servers.site import SiteSpec

BEGIN = "# BEGIN origin-agent"
END = "# END origin-agent"
MARK = "# origin-agent:"
ACME_PATH = "/.well-known/acme-challenge/"
_HTTPS_REDIRECT = re.compile(r"^\s*(Redirect\w*|RewriteRule)\b.*https://", re.I)
_OURS = {  # lines of the original that ours replace (SSLProxy* and the rest are kept)
    d.lower()
    for d in (
        "SSLEngine", "SSLCertificateFile", "SSLCertificateKeyFile", "SSLCertificateChainFile",
        "SSLProtocol", "SSLCipherSuite", "SSLHonorCipherOrder", "SSLOpenSSLConfCmd",
        "SSLCACertificateFile", "SSLVerifyClient", "SSLVerifyDepth",
    )
}  # fmt: skip
_REWRITE_COND = re.compile(r"^\s*RewriteCond\b", re.I)


def _open_brace(text: str, line: int, where: str) -> int:
    """Offset just past the line holding the ``{`` of the block whose directive starts on
    1-based ``line``."""
    lines = lines_of(text)
    if not 0 < line <= len(lines):
        raise ServerConfigError("no server block on this line", where=where)
    offset = sum(len(x) for x in lines[: line - 1])
    quote, comment = "", False
    for index in range(offset, len(text)):
        ch = text[index]
        if comment:
            comment = ch != "\n"
        elif quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            comment = True
        elif ch in ";}":
            break
        elif ch == "{":
            end = text.find("\n", index)
            rest = text[index + 1 : end if end >= 0 else len(text)]
            if rest.strip() and not rest.strip().startswith("#"):
                raise ServerConfigError(
                    "the server block's '{' is followed by more on its line",
                    where=where,
                    hint="move what follows '{' to the next line, then run again",
                )
            return len(text) if end < 0 else end + 1
    raise ServerConfigError("no server block starts on this line", where=where)


def _indent(text: str, offset: int) -> str:
    for line in text[offset:].split("\n"):
        if line.strip():
            stripped = line.lstrip()
            if stripped.startswith("}"):
                break
            return line[: len(line) - len(stripped)]
    return "    "


def _https_listens(server: VirtualServer, site: SiteSpec) -> list[str]:
    if site.listen_address is not None:
        return [site.listen(site.https_port)]
    found: list[str] = []
    for listen in server.on_port(site.http_port) or server.listens[:1]:
        value = str(site.https_port)
        if listen.address not in ("", "*"):
            value = f"{listen.address}:{site.https_port}"
        if value not in found:
            found.append(value)
    return found


def nginx_tls_lines(
    server: VirtualServer, site: SiteSpec, indent: str = "    ", *, acme: bool = True
) -> list[str]:
    """The marked lines :func:`adopt_nginx` puts in ``server`` (each ending in a newline);
    ``acme``: with the ACME http-01 location."""
    tls = site.tls
    body = [f"listen {value} ssl http2;" for value in _https_listens(server, site)]
    body += [
        f"ssl_certificate {site.cert_dir}/fullchain.pem;",
        f"ssl_certificate_key {site.cert_dir}/privkey.pem;",
        f"ssl_protocols {' '.join(tls.protocols)};",
    ]
    if tls.ciphers:
        body.append(f"ssl_ciphers {':'.join(tls.ciphers)};")
    body.append(f"ssl_ecdh_curve {':'.join(tls.curves)};")
    if site.client_ca_file:
        body += [
            f"ssl_client_certificate {site.client_ca_file};",
            "ssl_verify_client on;",
            "ssl_verify_depth 3;",
        ]
    if site.hsts:
        body.append(f'add_header Strict-Transport-Security "max-age={63072000}" always;')
    if acme:
        body += [
            f"location ^~ {ACME_PATH} {{",
            f"    root {site.acme_webroot};",
            "    default_type text/plain;",
            "    try_files $uri =404;",
            "}",
        ]
    head = f"{BEGIN}: TLS for site {site.name} (managed; delete down to the END line to undo)"
    return [f"{indent}{line}\n" for line in (head, *body, END)]


def _marked_span(text: str, start: int) -> tuple[int, int] | None:
    """Offsets of our marked lines right at ``start`` (BEGIN line to END line inclusive)."""
    if not text[start:].lstrip(" \t").startswith(BEGIN):
        return None
    offset = start
    for line in lines_of(text[start:]):
        offset += len(line)
        if line.strip().startswith(END):
            return start, offset
    raise ServerConfigError(f"{BEGIN} without {END}")


def adopt_nginx(text: str, server: VirtualServer, site: SiteSpec) -> str:
    """``text`` (the file holding ``server``) with our TLS lines in that block.

    Args:
        text: the file's exact bytes (decoded), e.g. from ``nginx -T`` or read on the origin.
        server: the block, from :func:`agent.servers.nginx_config.parse_dump`.
        site: what to serve (certificate directory, profile, ACME webroot, ports).

    Raises:
        ServerConfigError: the block has a certificate of its own (adopting would replace the
            operator's TLS), or its ``{`` shares its line with other statements.
    """
    where = server.where
    start = _open_brace(text, server.line, where)
    span = _marked_span(text, start)
    if span is None and server.certificate:
        raise ServerConfigError(
            "this server block already has its own ssl_certificate",
            where=where,
            hint="remove it (or the name from the inventory) to let the agent manage TLS",
        )
    ours = span is not None and ACME_PATH in text[span[0] : span[1]]
    theirs = sum(ACME_PATH.rstrip("/") in loc for loc in server.locations) - ours
    lines = "".join(nginx_tls_lines(server, site, _indent(text, start), acme=theirs <= 0))
    if span is None:
        return text[:start] + lines + text[start:]
    return text[: span[0]] + lines + text[span[1] :]


def unadopt_nginx(text: str) -> str:
    """``text`` without any of our marked blocks (the operator's original bytes)."""
    out: list[str] = []
    inside = False
    for line in lines_of(text):
        stripped = line.strip()
        if not inside and stripped.startswith(BEGIN):
            inside = True
        if not inside:
            out.append(line)
        elif stripped.startswith(END):
            inside = False
    return "".join(out)


def _twin_open(line: str, site: SiteSpec, where: str) -> str:
    match = re.match(r"^(\s*<VirtualHost\s+)([^>]*)(>.*)$", line, re.I | re.S)
    if not match:
        raise ServerConfigError("no <VirtualHost ...> on this line", where=where)
    addresses = []
    for address in match[2].split():
        if address.startswith("["):  # [::1]:80
            host = address.partition("]")[0] + "]"
        else:
            host, sep, _ = address.rpartition(":")
            host = host if sep else address
        addresses.append(f"{host}:{site.https_port}")
    return f"{match[1]}{' '.join(addresses)}{match[3]}"


def apache_tls_lines(site: SiteSpec, indent: str = "    ") -> list[str]:
    """Our SSL lines for the twin (each ending in a newline)."""
    tls = site.tls
    body = [
        "SSLEngine on",
        f"SSLCertificateFile {site.cert_dir}/fullchain.pem",
        f"SSLCertificateKeyFile {site.cert_dir}/privkey.pem",
        "SSLProtocol -all " + " ".join(f"+{p}" for p in tls.protocols),
    ]
    if tls.ciphers:
        body.append(f"SSLCipherSuite {':'.join(tls.ciphers)}")
    body += [f"SSLOpenSSLConfCmd Curves {':'.join(tls.curves)}", "SSLHonorCipherOrder off"]
    if site.client_ca_file:
        body += [
            f"SSLCACertificateFile {site.client_ca_file}",
            "SSLVerifyClient require",
            "SSLVerifyDepth 3",
        ]
    if site.hsts:
        body.append('Header always set Strict-Transport-Security "max-age=63072000"')
    return [f"{indent}{line}\n" for line in (f"{BEGIN}: TLS for site {site.name}", *body, END)]


def apache_twin(text: str, server: VirtualServer, site: SiteSpec) -> str:
    """Our file: a ``:443`` twin of the ``<VirtualHost>`` at ``server.line`` of ``text``.

    Redirects to ``https://`` (``Redirect*``, ``RewriteRule``, with the ``RewriteCond`` lines
    right before such a rule) are commented out with ``# origin-agent:``; the original's lines
    for what we set (``SSLEngine``, certificate, protocol, ciphers, client CA) are dropped in
    favour of ours; every other line of the block is copied as it is.

    Raises:
        ServerConfigError: no ``<VirtualHost>`` block at that line.
    """
    start, end = vhost_span(text, server.line, server.file)
    lines = lines_of(text)
    block = [line if line.endswith("\n") else line + "\n" for line in lines[start:end]]
    body: list[str] = []
    for line in block[1:-1]:
        if _HTTPS_REDIRECT.match(line):
            while body and _REWRITE_COND.match(body[-1]):
                body[-1] = _comment(body[-1])
            body.append(_comment(line))
        elif line.split()[:1] and line.split()[0].lower() in _OURS:
            continue
        else:
            body.append(line)
    indent = next((x[: len(x) - len(x.lstrip())] for x in body if x.strip()), "    ")
    head = (
        f"# Managed by origin-agent: site {site.name}, the :{site.https_port} twin of "
        f"{server.where} (copied from it; that file is not changed). Edits here are overwritten.\n"
    )
    return (
        head
        + _twin_open(block[0], site, server.where)
        + "".join(body)
        + "".join(apache_tls_lines(site, indent))
        + block[-1]
    )


def _comment(line: str) -> str:
    indent = line[: len(line) - len(line.lstrip())]
    return f"{indent}{MARK} (redirects to https, left out of the twin) {line.strip()}\n"
