"""Every argument of ``tls_origin`` (and its parts) checked for one host before anything runs,
in ``--check`` as in a real run: a value that a real run would refuse only after connecting,
or after the CA issued a certificate (``keep_versions: 1000``), is refused here first.

Pure but for reading the two controller files the arguments name (``client_ca`` and
``site_template``); nothing is sent anywhere. An issuer whose secret is not on this machine
passes (``--check`` may run where the secrets are not); any other issuer problem is refused.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from typing import Any

from cryptography import x509

from agent.errors import AgentError, IssuerError, MissingSecretError
from agent.modules.base import ModuleError
from agent.modules.tls import services
from agent.modules.tls.decide import desired
from agent.modules.tls.transaction import check_name
from agent.pki.renewal import renew_before_from_days
from agent.validate import check_path, check_port, shown

WEB_SERVERS = ("nginx", "apache")
PATHS = ("cert_root", "acme_webroot", "document_root")
MAX_CLIENT_CA = 1 << 20  # a CA bundle, not a file of any size
_PIN = re.compile(r"[A-Za-z0-9+/]{43}=")
# bounds of the numbers, as a real run (or the CA, or the transaction) would hold them
BOUNDS = {
    "keep_versions": (1, 100),
    "validity_days": (1, 36500),
    "verify_timeout": (1, 3600),
    "renew_before_days": (0, 36500),
}


def check(
    params: Mapping[str, Any],
    variables: Mapping[str, Any],
    host: str,
    *,
    manage_cert: bool = True,
    manage_site: bool = True,
) -> None:
    """Raise the first problem of ``params`` (with the host's ``variables``) for ``host``.

    Raises:
        ModuleError, ValidationError, IssuerError: one line naming the host and the argument.
    """
    _numbers(params, host)
    _pins(params.get("pins"), host)
    for arg in ("https_port", "http_port"):
        if arg in params and params[arg] is not None:
            check_port(params[arg], where=f"{host}: {arg}")
    server = _server(params, variables, host)
    client_ca = _client_ca(params.get("client_ca"), host) if manage_site else None
    if "site" in params and params["site"] is not None:
        check_name(params["site"], where=f"{host}: site")
    for arg in PATHS:
        if params.get(arg) is not None:
            check_path(params[arg], where=f"{host}: {arg}")
    full = {k: v for k, v in params.items() if v is not None}
    try:
        desired(
            {**_DEFAULTS, **full},
            variables,
            host,
            server,
            client_ca=client_ca,
            manage_site=manage_site,
        )
    except AgentError as err:
        if host in str(err):
            raise
        raise ModuleError(str(err), host=host) from None  # a site_template's error
    if manage_cert:
        _issuer(params.get("issuer") or variables.get("issuer"), host)


def _numbers(params: Mapping[str, Any], host: str) -> None:
    for arg, (low, high) in BOUNDS.items():
        value = params.get(arg)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ModuleError(
                f"{arg} must be a whole number from {low} to {high}, got {shown(value, 20)}",
                host=host,
            )
    try:
        renew_before_from_days(params.get("renew_before_days"))
    except ValueError as err:
        raise ModuleError(str(err), host=host) from None


def _pins(pins: Any, host: str) -> None:
    if pins is None:
        return
    if not isinstance(pins, list | tuple) or not all(isinstance(p, str) for p in pins):
        raise ModuleError("pins must be a list of SPKI pins", host=host)
    for pin in pins:
        if not _PIN.fullmatch(pin):
            raise ModuleError(
                f"pins: {shown(pin, 60)} is not an SPKI pin (base64 of a SHA-256, 44 characters)",
                host=host,
            )


def _server(params: Mapping[str, Any], variables: Mapping[str, Any], host: str) -> str:
    """The server the site is checked against: the argument, else the host var
    ``web_server`` (which must name a server if set), else nginx."""
    web_server = variables.get("web_server")
    if web_server is not None and web_server not in (*WEB_SERVERS, "auto"):
        raise ModuleError(
            f"web_server must be nginx, apache or auto, got {shown(web_server, 30)}",
            host=host,
        )
    server = params.get("server") or "auto"
    if server == "auto":
        server = web_server if web_server in WEB_SERVERS else "nginx"
    return str(server)


def _client_ca(path: Any, host: str) -> bytes | None:
    """The ``client_ca`` file's content: a regular file of PEM certificates, every one
    parsed (a run writes it to the origin as the CA of authenticated origin pulls)."""
    if path is None:
        return None
    if not isinstance(path, str) or not path:
        raise ModuleError("client_ca must be a file name", host=host)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise ModuleError(f"client_ca: cannot read {path}: {err.strerror}", host=host) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModuleError(f"client_ca: {path} is not a regular file", host=host)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_CLIENT_CA + 1)
    if len(data) > MAX_CLIENT_CA:
        raise ModuleError(f"client_ca: {path} is larger than a CA bundle", host=host)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise ModuleError(
            f"client_ca: {path} holds no PEM certificate",
            host=host,
            hint="give the CA certificate(s) of authenticated origin pulls, in PEM",
        )
    return data


def _issuer(config: Any, host: str) -> None:
    try:
        services.issuer(config, where=host)
    except MissingSecretError:
        pass  # the secret is read where the run is; --check may run elsewhere
    except IssuerError as err:
        raise IssuerError(f"{host}: {err.message}", backend=err.backend, hint=err.hint) from None


def _defaults() -> dict[str, Any]:
    from agent.modules.tls.spec import ARGS

    return {a.name: a.default for a in ARGS}


_DEFAULTS = _defaults()
