"""Opening an SSH session: ~/.ssh/config, TCP with bounded retry, host keys, authentication.

Precedence for each setting: a value set in the inventory (anything but the
:class:`~agent.transport.spec.ConnectionSpec` default) wins, then ``~/.ssh/config``
(``HostName``, ``User``, ``Port``, ``IdentityFile``, ``ProxyJump``,
``UserKnownHostsFile``), then the default.
Every failure becomes a :class:`~agent.errors.ConnectError` (or ``HostKeyError``) naming the
inventory host; passwords never reach a message.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from agent.errors import ConnectError, HostKeyError
from agent.transport.hostkeys import (
    AcceptNewPolicy,
    StrictPolicy,
    add_recorded_keys,
    changed_key_error,
    default_known_hosts,
    known_hosts_name,
)
from agent.transport.keyfiles import load_keys
from agent.transport.spec import ConnectionSpec

log = logging.getLogger(__name__)

_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(ConnectionSpec)}
REFUSED_RETRIES = 3  # attempts when the port actively refuses (sshd restarting)
REFUSED_DELAY = 0.3  # seconds before the second attempt; doubled after
IDLE_WAIT = 2.0
"""Seconds the reader thread of an established session waits on its socket before it looks
again whether the session was closed. paramiko wakes it every 0.1 s; data wakes it at once
either way, so only a fleet's worth of idle wake-ups (200 sessions: 2,000 a second) is saved."""


def _new_transport(
    sock: socket.socket | paramiko.Channel | paramiko.ProxyCommand | str | tuple[str, int],
    *,
    gss_kex: bool,
    gss_deleg_creds: bool,
    disabled_algorithms: Mapping[str, Iterable[str]] | None,
) -> paramiko.Transport:
    """paramiko's transport with AES-GCM preferred: one AEAD call per packet instead of AES-CTR
    and a separate HMAC (OpenSSH servers offer both; the others stay as fallbacks). GSS-API
    key exchange is never asked for here."""
    transport = paramiko.Transport(sock, disabled_algorithms=disabled_algorithms)
    options = transport.get_security_options()
    ciphers = tuple(options.ciphers)
    options.ciphers = tuple(sorted(ciphers, key=lambda c: "-gcm@" not in c))
    return transport


@dataclass(frozen=True)
class Target:
    """Where and how to connect, after ~/.ssh/config is applied."""

    hostname: str
    port: int
    user: str
    key_files: tuple[str, ...]
    proxy_jump: str  # "" when direct
    known_hosts: str = ""  # inventory value, else ssh config UserKnownHostsFile, else default


def ssh_config_path() -> Path:
    return Path.home() / ".ssh" / "config"


def load_ssh_config(path: Path | None = None) -> paramiko.SSHConfig:
    """Parse ``~/.ssh/config`` (an empty config when there is none)."""
    path = path or ssh_config_path()
    if path.is_file():
        return paramiko.SSHConfig.from_path(str(path))
    return paramiko.SSHConfig()


def resolve(spec: ConnectionSpec, config: paramiko.SSHConfig) -> Target:
    """Apply ``config`` to ``spec`` with the documented precedence."""
    try:  # a Match exec line runs a command; a bad Port is text: either fails inside paramiko
        entry = config.lookup(spec.address)
        port = spec.port
        if port == _DEFAULTS["port"] and "port" in entry:
            port = int(entry["port"])
    except Exception as err:  # whatever the config's evaluation raised, one line
        why = " ".join(f"{type(err).__name__}: {err}".split())[:200]
        raise ConnectError(
            f"the SSH client config ({ssh_config_path()}) could not be applied: {why}",
            host=spec.name,
        ) from err
    hostname = str(entry.get("hostname", spec.address))
    user = spec.user
    if user == _DEFAULTS["user"] and "user" in entry:
        user = str(entry["user"])
    if spec.key_file:
        keys: tuple[str, ...] = (os.path.expanduser(spec.key_file),)
    else:
        keys = tuple(os.path.expanduser(k) for k in entry.get("identityfile", []))
    jump = str(entry.get("proxyjump", ""))
    if jump.lower() == "none":
        jump = ""
    known = spec.known_hosts or next(iter(entry.get("userknownhostsfile", "").split()), "")
    known = os.path.expanduser(known or default_known_hosts())
    return Target(hostname, port, user, keys, jump, known)


def parse_jump(text: str) -> tuple[str | None, str, int | None]:
    """Split one ProxyJump hop ``[user@]host[:port]`` into its parts."""
    user, _, rest = text.rpartition("@")
    host, port = rest, None
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = int(tail[1:]) if tail.startswith(":") else None
    elif rest.count(":") == 1:
        host, _, p = rest.partition(":")
        port = int(p)
    return (user or None, host, port)


def tcp_connect(
    name: str,
    hostname: str,
    port: int,
    timeout: float,
    *,
    retries: int = REFUSED_RETRIES,
    delay: float = REFUSED_DELAY,
) -> socket.socket:
    """Open a TCP connection, retrying a bounded number of times on *refused* only.

    Raises:
        ConnectError: on refusal after the retries, timeout, or a name that does not resolve.
    """
    for attempt in range(1, retries + 1):
        try:
            sock = socket.create_connection((hostname, port), timeout=timeout)
        except ConnectionRefusedError as err:
            if attempt == retries:
                raise ConnectError(
                    f"connection to {hostname}:{port} refused ({retries} attempts)",
                    host=name,
                    hint="is sshd running on that port?",
                ) from err
            time.sleep(delay * 2 ** (attempt - 1))
            continue
        except TimeoutError as err:
            raise ConnectError(
                f"timed out connecting to {hostname}:{port} after {timeout:g}s", host=name
            ) from err
        except socket.gaierror as err:
            raise ConnectError(f"cannot resolve {hostname!r}: {err.strerror}", host=name) from err
        except OSError as err:
            raise ConnectError(
                f"cannot connect to {hostname}:{port}: {err.strerror or err}", host=name
            ) from err
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise AssertionError("unreachable")  # pragma: no cover


def password_from_env(name: str, env_name: str | None, field: str = "password_env") -> str | None:
    """The password held by environment variable ``env_name`` (never read from a file).

    Raises:
        ConnectError: when the variable is named but not set.
    """
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value is None:
        # the name is not shown: it may be the password itself, pasted into the wrong field
        raise ConnectError(f"the environment variable named by {field} is not set", host=name)
    return value


def open_client(
    spec: ConnectionSpec,
    *,
    accept_new_host_keys: bool,
    config: paramiko.SSHConfig | None = None,
) -> tuple[paramiko.SSHClient, list[paramiko.SSHClient]]:
    """Connect and authenticate; returns the client and the jump clients to close after it.

    Raises:
        ConnectError: unreachable, timed out, no banner, authentication failed.
        HostKeyError: unknown host key (unless accepted) or a changed one.
    """
    config = config if config is not None else load_ssh_config()
    target = resolve(spec, config)
    password = password_from_env(spec.name, spec.password_env)
    jumps: list[paramiko.SSHClient] = []
    sock: paramiko.Channel | None = None
    try:
        hops = [h.strip() for h in target.proxy_jump.split(",") if h.strip()]
        for hop in hops[:8]:
            user, host, port = parse_jump(hop)
            hop_spec = dataclasses.replace(
                spec,
                name=f"{spec.name} (jump {host})",
                address=host,
                port=port or _DEFAULTS["port"],
                user=user or target.user,
                password_env=None,
            )
            hop_target = dataclasses.replace(resolve(hop_spec, config), proxy_jump="")
            if not hop_target.key_files:
                hop_target = dataclasses.replace(hop_target, key_files=target.key_files)
            client = _connect_one(hop_spec, hop_target, sock, None, accept_new_host_keys)
            jumps.append(client)
            sock = _open_tunnel(spec, client, hops, hop, target, config)
        client = _connect_one(spec, target, sock, password, accept_new_host_keys)
    except BaseException:
        for jump in reversed(jumps):
            jump.close()
        raise
    return client, jumps


def _open_tunnel(
    spec: ConnectionSpec,
    client: paramiko.SSHClient,
    hops: list[str],
    hop: str,
    target: Target,
    config: paramiko.SSHConfig,
) -> paramiko.Channel:
    index = hops.index(hop)
    if index + 1 < len(hops):
        _, host, port = parse_jump(hops[index + 1])
        entry = config.lookup(host)
        dest = (str(entry.get("hostname", host)), port or int(entry.get("port", 22)))
    else:
        dest = (target.hostname, target.port)
    transport = client.get_transport()
    try:
        if transport is None:
            raise paramiko.SSHException("jump host transport closed")
        return transport.open_channel(
            "direct-tcpip", dest, ("127.0.0.1", 0), timeout=spec.connect_timeout
        )
    except (paramiko.SSHException, OSError) as err:
        raise ConnectError(
            f"jump host {hop} cannot reach {dest[0]}:{dest[1]}: {err}", host=spec.name
        ) from err


def quiet_paramiko() -> None:
    """Keep paramiko's own log records off the user's stderr unless debugging (-vvv).

    A failed handshake (no banner, a reset) makes paramiko's transport thread log ERROR lines
    with a traceback, which the CLI's default logging prints; the :class:`ConnectError` raised
    here already says what went wrong, in one line. Decided at each connect, so that the
    logging setup the CLI makes after the imports is the one that counts.
    """
    debugging = logging.getLogger().isEnabledFor(logging.DEBUG)
    logging.getLogger("paramiko").setLevel(logging.NOTSET if debugging else logging.CRITICAL + 1)


def _connect_one(
    spec: ConnectionSpec,
    target: Target,
    tunnel: paramiko.Channel | None,
    password: str | None,
    accept_new: bool,
) -> paramiko.SSHClient:
    name = spec.name
    timeout = spec.connect_timeout
    known_hosts = target.known_hosts
    quiet_paramiko()
    keys = load_keys(name, target.key_files)
    client = paramiko.SSHClient()
    try:
        add_recorded_keys(
            client.get_host_keys(), known_hosts, known_hosts_name(target.hostname, target.port)
        )
    except (OSError, UnicodeDecodeError) as err:  # a directory, unreadable, not text
        reason = (
            "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else err.strerror or str(err)
        )
        raise HostKeyError(f"cannot read known_hosts {known_hosts}: {reason}", host=name) from None
    sock: socket.socket | paramiko.Channel = (
        tunnel if tunnel is not None else tcp_connect(name, target.hostname, target.port, timeout)
    )
    policy_cls = AcceptNewPolicy if accept_new else StrictPolicy
    client.set_missing_host_key_policy(policy_cls(name, known_hosts))
    agent_ok = bool(os.environ.get("SSH_AUTH_SOCK"))
    try:
        client.connect(
            target.hostname,
            port=target.port,
            username=target.user,
            password=password,
            pkey=keys[0] if keys else None,
            key_filename=list(target.key_files[1:]) or None,  # type: ignore[arg-type]
            sock=sock,
            timeout=timeout + 0.5,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
            allow_agent=agent_ok and not keys,
            look_for_keys=not keys and password is None,
            transport_factory=_new_transport,
        )
        _idle_wait(client)
    except BaseException as err:
        client.close()
        sock.close()
        if isinstance(err, ConnectError):
            raise
        if isinstance(err, paramiko.BadHostKeyException):
            raise changed_key_error(
                name, err.hostname, err.key, err.expected_key, known_hosts
            ) from None
        if isinstance(err, Exception):
            raise _connect_error(name, target, timeout, err) from err
        raise
    log.debug("%s: connected to %s@%s:%d", name, target.user, target.hostname, target.port)
    return client


def _idle_wait(client: paramiko.SSHClient) -> None:
    """Let the session's reader thread sleep :data:`IDLE_WAIT` between its checks."""
    transport = client.get_transport()
    if transport is not None and isinstance(transport.sock, socket.socket):
        transport.sock.settimeout(IDLE_WAIT)


def _connect_error(name: str, target: Target, timeout: float, err: Exception) -> ConnectError:
    where = f"{target.user}@{target.hostname}:{target.port}"
    if isinstance(err, paramiko.AuthenticationException):
        return ConnectError(
            f"authentication failed for {where}",
            host=name,
            hint="check key_file, ssh-agent or the password environment variable",
        )
    text = str(err)
    if "banner" in text.lower() or isinstance(err, TimeoutError | socket.timeout):
        return ConnectError(f"no SSH banner from {where} within {timeout:g}s", host=name)
    if "no existing session" in text.lower():  # the handshake outlived its timeout
        return ConnectError(f"SSH handshake with {where} did not finish in time", host=name)
    if isinstance(err, OSError) and err.errno == errno.ECONNRESET:
        return ConnectError(f"connection reset by {where}", host=name)
    if isinstance(err, EOFError):
        return ConnectError(f"{where} closed the connection during the handshake", host=name)
    return ConnectError(f"SSH negotiation with {where} failed: {type(err).__name__}", host=name)
