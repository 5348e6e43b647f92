"""Values that enter from outside (inventory, plan, ``-e``, CLI), parsed once into plain typed
values. Shared by every layer, so it imports nothing from them.

``ipaddress`` alone is not a validator: it accepts an IPv6 scope id of any text
(``::1%x$(id)``, newlines, ``;``), and such a value reaches ``ssh_config``'s ``Match exec``
(a shell) or a web server config (OpenSSH's CVE-2023-51385 is the same class). Here a scope id
must be a plain interface name or number.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from agent.errors import ValidationError

# an interface name (Linux: at most 15 bytes) or a numeric zone index
_SCOPE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` for a message: cut to ``limit`` characters, a huge int described
    (``repr`` of an int over 4300 digits raises), never more than one line."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"<an integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def is_env_name(value: object) -> bool:
    """True if ``value`` can name an environment variable (``[A-Za-z_][A-Za-z0-9_]*``)."""
    return isinstance(value, str) and _ENV_NAME.fullmatch(value) is not None


def ip_address(value: object) -> str | None:
    """The normalised text of an IPv4/IPv6 literal, or None if ``value`` is not one.

    An IPv6 scope id is kept only if it is a plain interface name or number
    (``[A-Za-z0-9_.-]``, 1-15 characters); any other scope id makes the value "not an address"
    (callers then reject it, since ``%`` is not valid in a host name either).
    """
    if not isinstance(value, str) or not value or len(value) > 100:
        return None
    if "%" in value:
        head, _, scope = value.partition("%")
        if ":" not in head or not _SCOPE_ID.fullmatch(scope):
            return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def is_ipv6(value: object) -> bool:
    """True if ``value`` is an IPv6 literal (with at most a plain scope id)."""
    address = ip_address(value)
    return address is not None and ":" in address


def check_address(value: object, *, where: str | None, what: str = "address") -> str:
    """Return ``value`` normalised if it is an IPv4/IPv6 literal (see :func:`ip_address`).

    Raises:
        ValidationError: anything else, named by ``where`` and ``what``; a value is shown
            cut to 60 characters.
    """
    address = ip_address(value)
    if address is None:
        scope = isinstance(value, str) and "%" in value
        raise ValidationError(
            f"invalid {what} {shown(value)} ("
            + (
                "an IPv6 scope id must be an interface name: letters, digits, '_', '.', '-'"
                if scope
                else "an IP address"
            )
            + ")",
            where=where,
        )
    return address


_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    """True if ``host`` is ``localhost`` or a loopback IP literal (127.0.0.0/8, ::1)."""
    if host.lower().rstrip(".") in _LOOPBACK_NAMES:
        return True
    address = ip_address(host)
    return address is not None and ipaddress.ip_address(address.split("%")[0]).is_loopback


def check_secret_url(value: object, *, where: str | None, what: str = "url") -> str:
    """Return ``value`` if it is a URL a secret may be sent to.

    ``https://`` to any host; ``http://`` only to loopback (tests and labs). No user info, query
    or fragment: a credential in a URL ends up in logs.

    Raises:
        ValidationError: any other value; the message shows the scheme and host only.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} must be an https:// URL", where=where)
    text = value.strip()
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise ValidationError(f"{what} contains whitespace or a control character", where=where)
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValidationError(f"{what} is not a valid URL", where=where) from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not host:
        raise ValidationError(
            f"{what} must be an https:// URL with a host (got scheme {scheme or 'none'!r})",
            where=where,
        )
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            f"{what} must not carry user info (user:password@)",
            where=where,
            hint="give the credential through the backend's *_env or *_file setting",
        )
    if parts.query or parts.fragment:
        raise ValidationError(f"{what} must not carry a query string or fragment", where=where)
    if scheme == "http" and not is_loopback(host):
        raise ValidationError(
            f"{what} http://{host} would send credentials in clear text",
            where=where,
            hint="use https:// (plain http is accepted for loopback addresses only)",
        )
    return text


_BIDI = {*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C}


def terminal_safe(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1: ESC sequences, CR/LF) and bidi
    override escaped as ``\\xNN``/``\\uNNNN``, for text from elsewhere (a served certificate's
    issuer, an inventory value) printed on a terminal."""
    if text.isprintable() and not any(ord(c) in _BIDI for c in text):
        return text
    out = []
    for char in text:
        code = ord(char)
        if code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif code in _BIDI or not char.isprintable():
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._+@/=,:-]*$")


def check_hostname(value: str, *, where: str = "") -> str:
    """Return ``value`` if it is a DNS name (optionally a leading ``*.``), else raise."""
    if not isinstance(value, str) or not _HOSTNAME.fullmatch(value):
        raise ValidationError(f"invalid hostname {value!r}", where=where or None)
    return value


def check_path(value: str, *, where: str = "") -> str:
    """Return ``value`` if it is an absolute path of plain characters with no ``..``."""
    if (
        not isinstance(value, str)
        or not _SAFE_PATH.fullmatch(value)
        or any(seg == ".." for seg in value.split("/"))
    ):
        raise ValidationError(f"invalid path {value!r}", where=where or None)
    return value


def check_port(value: object, *, where: str = "") -> int:
    """Return ``value`` as an int if it is a TCP port (1-65535)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | str)
        or (isinstance(value, int) and not 1 <= value <= 65535)  # str() of a huge int raises
        or (isinstance(value, str) and len(value) > 8)
    ):
        raise ValidationError(f"invalid port {shown(value, 40)}", where=where or None)
    try:
        port: int = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(f"invalid port {value!r}", where=where or None) from None
    if not 1 <= port <= 65535 or str(port) != str(value).strip():
        raise ValidationError(f"invalid port {value!r}", where=where or None)
    return port
