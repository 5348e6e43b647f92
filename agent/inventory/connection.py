"""How to reach a host: :func:`connection_spec` reads our variable names and Ansible's.

=====================  ==================================================================
our name               Ansible aliases (accepted the same)
=====================  ==================================================================
host                   ansible_host, ansible_ssh_host
port                   ansible_port, ansible_ssh_port
user                   ansible_user, ansible_ssh_user
key_file               ansible_ssh_private_key_file, ansible_private_key_file
known_hosts            (none)
password_env           (none: name of an environment variable holding the SSH password)
become                 ansible_become
become_user            ansible_become_user
become_password_env    (none)
connection             ansible_connection (``ssh``, ``local``; ``paramiko``/``smart`` = ssh)
connect_timeout        ansible_timeout, ansible_ssh_timeout
=====================  ==================================================================

A setting given under two names with different values is an error naming the host. Other
``ansible_*`` connection variables (``ansible_ssh_common_args``, ``ansible_python_interpreter``
...) are ignored. Passwords written in the inventory (``ansible_password``,
``ansible_become_password``...) are refused: name an environment variable instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from agent.errors import InventoryError
from agent.inventory.model import ConnectionSpec, Host
from agent.validate import ip_address, shown

ALIASES: dict[str, tuple[str, ...]] = {
    "host": ("ansible_host", "ansible_ssh_host"),
    "port": ("ansible_port", "ansible_ssh_port"),
    "user": ("ansible_user", "ansible_ssh_user"),
    "key_file": ("ansible_ssh_private_key_file", "ansible_private_key_file"),
    "known_hosts": (),
    "password_env": (),
    "become": ("ansible_become",),
    "become_user": ("ansible_become_user",),
    "become_password_env": (),
    "connection": ("ansible_connection",),
    "connect_timeout": ("ansible_timeout", "ansible_ssh_timeout"),
}
PASSWORD_VARS = (
    "ansible_password",
    "ansible_ssh_pass",
    "ansible_ssh_password",
    "ansible_become_password",
    "ansible_become_pass",
    "ansible_sudo_pass",
)
CONNECTIONS = {"ssh": "ssh", "paramiko": "ssh", "smart": "ssh", "local": "local"}
_ADDRESS = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}\$?$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}


def _address(value: Any) -> str:
    if isinstance(value, str):
        address = ip_address(value)
        if address is not None:
            return address
        if _ADDRESS.fullmatch(value) and ".." not in value:
            last = value.rstrip(".").rsplit(".", 1)[-1]
            if last.isdigit() or re.fullmatch(r"0[xX][0-9A-Fa-f]*", last):
                # '0', '127.1', '0x7f.1': no DNS name, but the resolver reads them as IPv4
                raise ValueError("not a host name or IP address (a numeric name is not a host)")
            return value
    raise ValueError("not a host name or IP address")


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("not a port number")
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError("not a port number (1-65535)")
    return int(text)


def _user(value: Any) -> str:
    if isinstance(value, str) and _USER.fullmatch(value):
        return value
    raise ValueError("not a user name")


def _path(value: Any) -> str:
    if isinstance(value, str) and value and not any(c in value for c in "\x00\n\r"):
        return os.path.expanduser(value)
    raise ValueError("not a file path")


def _env(value: Any) -> str:
    if isinstance(value, str) and _ENV.fullmatch(value):
        return value
    raise ValueError("not an environment variable name")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("not a boolean (true/false)")


def _connection(value: Any) -> str:
    if isinstance(value, str) and value in CONNECTIONS:
        return CONNECTIONS[value]
    raise ValueError("unsupported connection (use ssh or local)")


def _timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("not a number of seconds")
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError("not a number of seconds") from None
    if not 0 < seconds <= 3600:
        raise ValueError("not between 0 and 3600 seconds")
    return seconds


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "host": _address,
    "port": _port,
    "user": _user,
    "key_file": _path,
    "known_hosts": _path,
    "password_env": _env,
    "become": _bool,
    "become_user": _user,
    "become_password_env": _env,
    "connection": _connection,
    "connect_timeout": _timeout,
}


def _setting(host: Host, name: str) -> tuple[Any, str] | None:
    """The parsed value of setting ``name`` and the variable it came from, if set."""
    chosen: tuple[Any, str] | None = None
    for var in (name, *ALIASES[name]):
        if var not in host.vars:
            continue
        raw = host.vars[var]
        try:
            value = _PARSERS[name](raw)
        except ValueError as err:
            # a value in an *_env field may be a password pasted there: never show it
            value_text = "(value not shown)" if var.endswith("_env") else shown(raw, 80)
            raise InventoryError(f"{var} {value_text}: {err}", where=host.name) from None
        if chosen is not None and chosen[0] != value:
            raise InventoryError(
                f"{chosen[1]} ({chosen[0]!r}) and {var} ({value!r}) disagree",
                where=host.name,
                hint="set only one of them",
            )
        chosen = chosen or (value, var)
    return chosen


def with_overrides(host: Host, extra_vars: Mapping[str, Any]) -> Host:
    """``host`` with the connection settings ``-e`` gives in place of its own (``-e`` overrides
    every other variable): each alias of an overridden setting is dropped first, so the value
    from ``-e`` is parsed and validated exactly as an inventory value would be."""
    given = dict(host.vars)
    for name, aliases in ALIASES.items():
        names = (name, *aliases)
        if any(var in extra_vars for var in names):
            for var in names:
                given.pop(var, None)
            given.update({var: extra_vars[var] for var in names if var in extra_vars})
    given.update({var: extra_vars[var] for var in PASSWORD_VARS if var in extra_vars})
    return Host(host.name, given, list(host.groups))


def connection_spec(host: Host) -> ConnectionSpec:
    """Resolve how to reach ``host`` from its variables (see the module docstring).

    Raises:
        InventoryError: a value is invalid, a setting is given two ways with different values,
            or a password is written in the inventory; the message names the host and the
            variable, never a password.
    """
    for var in PASSWORD_VARS:
        if var in host.vars:
            raise InventoryError(
                f"{var} puts a password in the inventory, which is not supported",
                where=host.name,
                hint="store it in an environment variable and set "
                + ("become_password_env" if "become" in var or "sudo" in var else "password_env"),
            )
    values: dict[str, Any] = {}
    for name in ALIASES:
        found = _setting(host, name)
        if found is not None:
            values[name] = found[0]
    address = values.pop("host", None)
    if address is None and values.get("connection") == "local":
        address = host.name
    if address is None:
        try:
            address = _address(host.name)
        except ValueError:
            raise InventoryError(
                "the inventory name is not a host name or IP address",
                where=host.name,
                hint="set host (or ansible_host)",
            ) from None
    return ConnectionSpec(name=host.name, address=address, **values)
