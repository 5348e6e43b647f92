"""What one TLS site on an origin looks like, validated before anything is rendered.

:class:`SiteSpec` is the only input to the site templates. Every value in it has been checked
(hostnames, paths, ports, booleans, the profile name), so a template can put them into a
config file verbatim: a value with a newline, ``;``, ``{``, ``}`` or a quote never gets this far.

The TLS profiles are Mozilla's server-side TLS guidelines 6.0 as they apply to Debian 12
(OpenSSL 3.0): ``X25519MLKEM768`` is left out of the groups because OpenSSL < 3.5 refuses it
(``nginx -t`` fails; Apache would fail at start).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from agent.errors import ValidationError
from agent.validate import check_address, check_hostname, check_path, check_port

Profile = Literal["intermediate", "modern"]
PROFILE_NAMES: tuple[str, ...] = get_args(Profile)

HSTS_MAX_AGE = 63072000  # two years, Mozilla's minimum
CERT_ROOT = "/etc/ssl/origin-agent"


@dataclass(frozen=True)
class TlsProfile:
    """Protocol versions, TLS 1.2 ciphers (OpenSSL names, in order) and groups of a profile."""

    name: str
    protocols: tuple[str, ...]
    ciphers: tuple[str, ...]
    curves: tuple[str, ...]


_CURVES = ("X25519", "prime256v1", "secp384r1")
PROFILES: dict[str, TlsProfile] = {
    "intermediate": TlsProfile(
        "intermediate",
        ("TLSv1.2", "TLSv1.3"),
        (
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "ECDHE-RSA-CHACHA20-POLY1305",
        ),
        _CURVES,
    ),
    "modern": TlsProfile("modern", ("TLSv1.3",), (), _CURVES),
}


_UPSTREAM = re.compile(
    r"(?P<scheme>https?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<path>/[A-Za-z0-9._~/-]*)?"
)


def check_upstream(value: object, where: str) -> str:
    """An application URL to proxy to: ``http[s]://HOST[:PORT][/PATH]`` (HOST a name or an IP
    address, IPv6 in brackets; PATH of letters, digits and ``._~/-`` only).

    Raises:
        ValidationError: anything else (a value with spaces, quotes, ``;``, ``$``, a query...).
    """
    text = value if isinstance(value, str) else ""
    match = _UPSTREAM.fullmatch(text)
    hint = "http[s]://HOST[:PORT][/PATH], e.g. http://127.0.0.1:8080"
    if match is None:
        raise ValidationError(f"invalid upstream {value!r}", where=where, hint=hint)
    host = match["host"]
    if host.startswith("["):
        _check_address(host[1:-1], where)
    else:
        check_hostname(host, where=where)
    if match["port"] is not None:
        check_port(int(match["port"]), where=where)
    return text


def _check_bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"expected true or false, got {value!r}", where=where)
    return value


def _check_address(value: object, where: str) -> str:
    return check_address(value, where=where, what="listen address")


@dataclass(frozen=True)
class SiteSpec:
    """One TLS site. Construct it with keyword arguments or :meth:`from_mapping`.

    Attributes:
        name: site id; names the config file and the certificate directory.
        server_names: every name the site answers to (wildcards ``*.example.com`` allowed).
        listen_address: IP address to bind explicitly (``None``: all addresses).
        cert_dir: directory holding ``privkey.pem``, ``fullchain.pem`` (leaf first), ``cert.pem``
            and ``chain.pem``; by default the ``current`` symlink of ``/etc/ssl/origin-agent/NAME``.
        profile: ``intermediate`` (TLS 1.2 + 1.3) or ``modern`` (TLS 1.3 only).
        redirect_http: answer plain HTTP with a 308 to HTTPS (off by default: an edge still in
            Flexible mode would loop).
        hsts: send ``Strict-Transport-Security`` (off by default: it is sticky in browsers).
        acme_webroot: ``/.well-known/acme-challenge/TOKEN`` on the HTTP port is served from
            ``ACME_WEBROOT/.well-known/acme-challenge/TOKEN`` (certbot's webroot layout), always.
        client_ca_file: CA bundle for authenticated origin pulls; when set, a client certificate
            from that CA is required.
        document_root: directory served.
        upstream: an application to proxy to instead of serving ``document_root``
            (``http://127.0.0.1:8080``; see :func:`check_upstream`); the ACME http-01 path
            is still served from ``acme_webroot``.
    """

    name: str
    server_names: tuple[str, ...]
    listen_address: str | None = None
    https_port: int = 443
    http_port: int = 80
    cert_dir: str = ""
    profile: Profile = "intermediate"
    redirect_http: bool = False
    hsts: bool = False
    acme_webroot: str = "/var/www/acme"
    client_ca_file: str | None = None
    document_root: str = "/var/www/html"
    upstream: str | None = None
    where: str = "site"

    def __post_init__(self) -> None:
        w = self.where
        check_hostname(self.name, where=f"{w}: name")
        if "*" in self.name:
            raise ValidationError(
                f"invalid site name {self.name!r} (no wildcard)", where=f"{w}: name"
            )
        names = self.server_names
        if isinstance(names, str) or not isinstance(names, tuple | list) or not names:
            raise ValidationError("expected a non-empty list of names", where=f"{w}: server_names")
        for name in names:
            check_hostname(name, where=f"{w}: server_names")
        # a name given twice (names are case-insensitive) is one name: configs list it once
        unique: dict[str, str] = {}
        for name in names:
            unique.setdefault(str(name).lower(), name)
        object.__setattr__(self, "server_names", tuple(unique.values()))
        if self.listen_address is not None:
            addr = _check_address(self.listen_address, f"{w}: listen_address")
            object.__setattr__(self, "listen_address", addr)
        object.__setattr__(
            self, "https_port", check_port(self.https_port, where=f"{w}: https_port")
        )
        object.__setattr__(self, "http_port", check_port(self.http_port, where=f"{w}: http_port"))
        if self.https_port == self.http_port:
            raise ValidationError("https_port and http_port must differ", where=f"{w}: https_port")
        if not self.cert_dir:
            object.__setattr__(self, "cert_dir", f"{CERT_ROOT}/{self.name}/current")
        for key in ("cert_dir", "acme_webroot", "document_root"):
            value = getattr(self, key)
            check_path(value, where=f"{w}: {key}")
            object.__setattr__(self, key, value.rstrip("/") or "/")
        if self.client_ca_file is not None:
            check_path(self.client_ca_file, where=f"{w}: client_ca_file")
        if self.upstream is not None:
            check_upstream(self.upstream, f"{w}: upstream")
        if self.profile not in PROFILE_NAMES:
            raise ValidationError(
                f"unknown profile {self.profile!r} (one of {', '.join(PROFILE_NAMES)})",
                where=f"{w}: profile",
            )
        for key in ("redirect_http", "hsts"):
            _check_bool(getattr(self, key), f"{w}: {key}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "site") -> SiteSpec:
        """Build a site from a mapping (plan params or inventory vars).

        Raises:
            ValidationError: an unknown key (the accepted ones are listed), a missing one, or a
                value that fails validation; the message names the key.
        """
        accepted = [f.name for f in fields(cls) if f.name != "where"]
        unknown = sorted(set(data) - set(accepted))
        if unknown:
            raise ValidationError(
                f"unknown key {unknown[0]!r}", where=where, hint=f"accepted: {', '.join(accepted)}"
            )
        for key in ("name", "server_names"):
            if key not in data:
                raise ValidationError(f"missing key {key!r}", where=where)
        values = dict(data)
        if isinstance(values.get("server_names"), list):
            values["server_names"] = tuple(values["server_names"])
        return cls(**values, where=where)

    @property
    def tls(self) -> TlsProfile:
        return PROFILES[self.profile]

    @property
    def primary_name(self) -> str:
        """First name without a wildcard (Apache's ``ServerName``), else the site name."""
        return next((n for n in self.server_names if not n.startswith("*.")), self.name)

    def listen(self, port: int) -> str:
        """``ADDRESS:PORT`` (IPv6 in brackets), or ``PORT`` when no address is set."""
        if self.listen_address is None:
            return str(port)
        if ":" in self.listen_address:
            return f"[{self.listen_address}]:{port}"
        return f"{self.listen_address}:{port}"

    def template_vars(self) -> dict[str, Any]:
        """Everything a site template may use (all values validated)."""
        tls = self.tls
        return {
            "name": self.name,
            "server_names": list(self.server_names),
            "primary_name": self.primary_name,
            "aliases": [n for n in self.server_names if n != self.primary_name],
            "listen_address": self.listen_address,
            "vhost_host": self.listen(0).rpartition(":")[0] if self.listen_address else "*",
            "http_listen": self.listen(self.http_port),
            "https_listen": self.listen(self.https_port),
            "http_port": self.http_port,
            "https_port": self.https_port,
            "https_port_suffix": "" if self.https_port == 443 else f":{self.https_port}",
            "cert_dir": self.cert_dir,
            "fullchain": f"{self.cert_dir}/fullchain.pem",
            "privkey": f"{self.cert_dir}/privkey.pem",
            "chain": f"{self.cert_dir}/chain.pem",
            "profile": self.profile,
            "protocols": list(tls.protocols),
            "ciphers": list(tls.ciphers),
            "curves": list(tls.curves),
            "redirect_http": self.redirect_http,
            "hsts": self.hsts,
            "hsts_max_age": HSTS_MAX_AGE,
            "acme_webroot": self.acme_webroot,
            "client_ca_file": self.client_ca_file,
            "document_root": self.document_root,
            "upstream": self.upstream,
            "upstream_slash": self.upstream.rstrip("/") + "/" if self.upstream else None,
            "upstream_tls": bool(self.upstream and self.upstream.startswith("https:")),
        }
