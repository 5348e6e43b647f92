"""Where ``status``, ``pins`` and ``promote`` probe a host, from its inventory values parsed with
the rules ``run`` applies: the address from :func:`~agent.inventory.connection_spec` (never a raw
``ansible_host``), ``listen_address`` through the shared address validator, ports 1-65535, and
``tls_names`` a list of DNS names or IP addresses (an IDN is IDNA-encoded once, here). Nothing
unchecked reaches a socket, an SNI or a ``Host:`` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import AgentError, UsageError, ValidationError
from agent.inventory import Host, connection_spec
from agent.pki.csr import normalize_name
from agent.validate import check_address, check_port, shown

MAX_NAMES = 100


@dataclass(frozen=True)
class ProbeTarget:
    """The validated values a probe of one host uses."""

    address: str
    https_port: int
    http_port: int
    names: tuple[str, ...]


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{shown(value, 40)} is not a name (a string)", where=where)
    text = value
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValidationError(
                f"{shown(value, 60)} is not a valid internationalised name", where=where
            ) from None
    try:
        return normalize_name(text, where=where)
    except AgentError as err:
        raise ValidationError(err.message, where=where) from None


def tls_names(host: Host) -> tuple[str, ...]:
    """The host's ``tls_names`` (default: its inventory name), validated.

    Raises:
        ValidationError: not a list (a string would be read one character at a time), empty
            entries, a name that is neither a DNS name nor an IP address.
    """
    where = f"{host.name}: tls_names"
    raw = host.vars.get("tls_names")
    if raw is None or raw == []:
        return (_name(host.name, f"{host.name}: inventory name"),)
    if not isinstance(raw, list | tuple):
        raise ValidationError(
            f"expected a list of names, got {type(raw).__name__} {shown(raw, 40)}",
            where=where,
            hint='write tls_names: ["a.example.com"]',
        )
    if len(raw) > MAX_NAMES:
        raise ValidationError(f"more than {MAX_NAMES} names", where=where)
    names: list[str] = []
    for value in raw:
        name = _name(value, where)
        if name not in names:
            names.append(name)
    return tuple(names)


def _port(host: Host, var: str, default: int) -> int:
    value = host.vars.get(var)
    if value is None:
        return default
    try:
        return check_port(value)
    except AgentError:
        raise ValidationError(
            f"invalid port {shown(value, 40)} (1-65535)", where=f"{host.name}: {var}"
        ) from None


def probe_target(host: Host) -> ProbeTarget:
    """Where and what to probe on ``host``.

    Raises:
        InventoryError: a connection value is invalid (from ``connection_spec``).
        ValidationError: ``listen_address``, a port or a name is invalid (one line naming the
            host and the variable).
    """
    listen = host.vars.get("listen_address")
    if listen:  # the origin probes itself there (agent.jobs.vantage): checked here too
        check_address(listen, where=f"{host.name}: listen_address")
    # the controller probes the address the connection reaches (the TLS step's rule), validated
    address = connection_spec(host).address
    return ProbeTarget(
        address=address,
        https_port=_port(host, "https_port", 443),
        http_port=_port(host, "http_port", 80),
        names=tls_names(host),
    )


def check_output_file(path: Path | None, option: str) -> None:
    """Refuse, before any work, an output path that cannot be written: a directory, or a
    file in a directory that does not exist.

    Raises:
        UsageError: naming ``option`` and the path.
    """
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{path} is a directory", where=option, hint="give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"directory {parent} does not exist", where=option)


def write_output_file(path: Path, text: str, option: str) -> None:
    """Write ``text`` to ``path``; an OS error is one line.

    Raises:
        UsageError: the file cannot be written (full disk, permissions...).
    """
    try:
        path.write_text(text)
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or err}", where=option) from None
