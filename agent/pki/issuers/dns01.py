"""ACME dns-01 through Cloudflare's DNS API: settings, publishing the TXT records, waiting until
the zone's authoritative servers answer with them, and removing them again.

Config keys (in the ``acme`` issuer mapping, with ``challenge: dns-01``)::

    dns_token_env: CF_DNS_TOKEN     # API token with Zone:DNS:Edit, or dns_token_file: PATH
    dns_zone_id: ID                 # the zone; or dns_zone: example.com (looked up by name);
                                    # neither: each name's zone is looked up by its parents
    dns_api: https://api.cloudflare.com/client/v4
    dns_ca_bundle: PATH             # TLS trust for dns_api (default: system)
    dns_servers: [203.0.113.53, "127.0.0.1:8053"]   # where to check the records
                                    # (default: the zone's NS, found by the system resolver)
    dns_wait: 120                   # seconds to wait for every server to answer (1-900)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import dns.resolver

from agent.errors import IssuerError
from agent.pki.issuers.cloudflare_api import DEFAULT_BASE_URL, CloudflareClient
from agent.pki.issuers.cloudflare_dns import CloudflareDns, TxtRecord, challenge_name
from agent.pki.issuers.http import RetryPolicy, check_file, check_url, load_secret, opt_str
from agent.pki.issuers.keys import Key, default
from agent.secret import Secret

log = logging.getLogger(__name__)

KEYS = (
    Key("dns_token_env", "env", help="Cloudflare API token (Zone:DNS:Edit) for the TXT records"),
    Key("dns_token_file", "file", help="or that token in a file"),
    Key("dns_zone_id", help="the zone (default: each name's zone, looked up by its parents)"),
    Key("dns_zone", help="or the zone's name; not both"),
    Key("dns_api", "url", DEFAULT_BASE_URL, help="Cloudflare API base URL"),
    Key("dns_ca_bundle", "file", help="TLS trust for dns_api (default: system)"),
    Key(
        "dns_servers",
        "list",
        help="where to check the records (IP[:PORT]; default: the zone's NS, found by the "
        "system resolver)",
    ),
    Key("dns_wait", "number", 120, help="seconds to wait for every server to answer (1-900)"),
)
"""The ``dns_*`` keys (with ``challenge: dns-01``)."""
POLL_INTERVAL = 2.0  # seconds between looks at the authoritative servers
QUERY_TIMEOUT = 3.0


@dataclass(frozen=True)
class Dns01Config:
    """Validated dns-01 settings."""

    token: Secret = field(repr=False)
    zone_id: str = ""
    zone: str = ""
    api: str = DEFAULT_BASE_URL
    ca_bundle: str | None = None
    servers: tuple[tuple[str, int], ...] = ()
    wait: float = 120.0

    @classmethod
    def parse(cls, config: Mapping[str, Any], *, backend: str) -> Dns01Config:
        """Read the ``dns_*`` keys of an issuer mapping.

        Raises:
            IssuerError: no token, both zone keys, a bad server address or wait.
        """
        token = load_secret(
            config,
            backend=backend,
            env_key="dns_token_env",
            file_key="dns_token_file",
            what="Cloudflare DNS API token",
        )
        if token is None:
            raise IssuerError(
                "dns-01 needs a Cloudflare API token",
                backend=backend,
                hint="name it with dns_token_env or dns_token_file (Zone:DNS:Edit)",
            )
        zone_id = opt_str(config, "dns_zone_id", backend=backend)
        zone = opt_str(config, "dns_zone", backend=backend)
        if zone_id and zone:
            raise IssuerError("set either dns_zone_id or dns_zone, not both", backend=backend)
        api = check_url(
            opt_str(config, "dns_api", backend=backend, default=default(KEYS, "dns_api")),
            key="dns_api",
            backend=backend,
        )
        bundle = opt_str(config, "dns_ca_bundle", backend=backend) or None
        if bundle:
            check_file(bundle, key="dns_ca_bundle", backend=backend)
        wait = config.get("dns_wait", default(KEYS, "dns_wait"))
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 1 <= wait <= 900:
            raise IssuerError("dns_wait must be 1 to 900 seconds", backend=backend)
        raw = config.get("dns_servers") or []
        if not isinstance(raw, list):
            raise IssuerError("dns_servers must be a list of addresses", backend=backend)
        servers = tuple(_server(s, backend) for s in raw)
        return cls(token, zone_id, zone, api, bundle, servers, float(wait))


def _server(value: Any, backend: str) -> tuple[str, int]:
    """``"192.0.2.53"``, ``"192.0.2.53:5353"`` or ``"[2001:db8::53]:53"`` as (address, port)."""
    import ipaddress

    text = str(value).strip()
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError(port)
    except ValueError:
        raise IssuerError(
            f"dns_servers: {text!r} is not an IP address with an optional port", backend=backend
        ) from None
    return host, number


def txt_values(server: tuple[str, int], name: str, *, timeout: float = QUERY_TIMEOUT) -> set[str]:
    """The TXT strings ``server`` answers for ``name`` (TCP when the answer is truncated).

    Raises:
        dns.exception.DNSException, OSError: no answer.
    """
    query = dns.message.make_query(name, dns.rdatatype.TXT)
    query.flags &= ~dns.flags.RD  # ask the authoritative server itself, not its cache
    answer = dns.query.udp(query, server[0], port=server[1], timeout=timeout)
    if answer.flags & dns.flags.TC:
        answer = dns.query.tcp(query, server[0], port=server[1], timeout=timeout)
    values: set[str] = set()
    for rrset in answer.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            for rdata in rrset:
                values.add(b"".join(rdata.strings).decode("utf-8", "replace"))
    return values


def zone_servers(zone: str, *, backend: str) -> tuple[tuple[str, int], ...]:
    """The addresses of ``zone``'s nameservers (its NS records), by the system resolver.

    Raises:
        IssuerError: the zone's nameservers cannot be found.
    """
    try:
        targets = [str(r.target) for r in dns.resolver.resolve(zone, "NS")]
        found = [
            (str(a), 53)
            for t in targets
            for a in dns.resolver.resolve(t, "A", raise_on_no_answer=False)
        ]
    except dns.exception.DNSException as err:
        raise IssuerError(
            f"dns-01: cannot find the nameservers of {zone}: {err}",
            backend=backend,
            hint="set dns_servers",
        ) from err
    if not found:
        raise IssuerError(f"dns-01: {zone} has no nameserver addresses", backend=backend)
    return tuple(found)


def wait_visible(
    expected: Mapping[str, set[str]],
    servers: Sequence[tuple[str, int]],
    *,
    wait: float,
    backend: str,
    lookup: Callable[[tuple[str, int], str], set[str]] = txt_values,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once every server answers every name with (at least) the expected values.

    Raises:
        IssuerError: ``wait`` seconds passed first; names the record and server still missing.
    """
    deadline = clock() + wait
    missing: tuple[str, tuple[str, int]] | None = None
    while True:
        missing = None
        for server in servers:
            for name, values in expected.items():
                try:
                    seen = lookup(server, name)
                except (dns.exception.DNSException, OSError) as err:
                    log.info("dns-01: %s at %s:%d: %s", name, *server, err)
                    seen = set()
                if not values <= seen:
                    missing = (name, server)
                    break
            if missing:
                break
        if missing is None:
            return
        if clock() >= deadline:
            name, (host, port) = missing
            raise IssuerError(
                f"dns-01: {name} TXT not visible at {host}:{port} after {wait:g}s",
                backend=backend,
                hint="check the zone's nameservers (dns_servers) or raise dns_wait",
            )
        sleep(min(POLL_INTERVAL, max(0.0, deadline - clock())))


class Dns01:
    """Publishes dns-01 answers as Cloudflare TXT records and takes them away again.

    Records of one name are handled by one thread at a time (two hosts of one run sharing a
    wildcard must not remove each other's records as leftovers).
    """

    def __init__(self, config: Dns01Config, *, backend: str, retry: RetryPolicy) -> None:
        self.config = config
        self.backend = backend
        client = CloudflareClient(
            config.api,
            credential=config.token,
            ca_bundle=config.ca_bundle,
            retry=retry,
            backend=backend,
        )
        self.api = CloudflareDns(client, zone_id=config.zone_id, zone=config.zone)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def names_held(self, identifiers: Sequence[str]) -> Iterator[None]:
        """Hold the records of ``identifiers`` for this thread (in sorted order: no deadlock)."""
        names = sorted({challenge_name(i) for i in identifiers})
        with self._guard:
            locks = [self._locks.setdefault(n, threading.Lock()) for n in names]
        for lock in locks:
            lock.acquire()
        try:
            yield
        finally:
            for lock in reversed(locks):
                lock.release()

    def present(self, answers: Sequence[tuple[str, str]]) -> list[TxtRecord]:
        """Publish ``(identifier, TXT value)`` pairs and wait until the zone serves them.

        Leftovers of an earlier run under the same names are removed first. On failure the
        records made so far are removed before the error propagates.

        Raises:
            IssuerError: the API refused, or the records did not show in time.
        """
        names = [challenge_name(i) for i, _ in answers]
        self.api.remove_leftovers(names)
        created: list[TxtRecord] = []
        try:
            for name, (_, value) in zip(names, answers, strict=True):
                created.append(self.api.create(name, value))
            expected: dict[str, set[str]] = {}
            for record in created:
                expected.setdefault(record.name, set()).add(record.content)
            servers = self.config.servers or zone_servers(
                self.api.zone_of(names[0])[1], backend=self.backend
            )
            wait_visible(expected, servers, wait=self.config.wait, backend=self.backend)
        except BaseException:
            self.remove(created)
            raise
        return created

    def remove(self, records: Sequence[TxtRecord]) -> None:
        """Delete ``records``; a failure is logged (the next run removes what is left)."""
        for record in records:
            try:
                self.api.delete(record)
            except IssuerError as err:
                log.warning("%s; the next run removes it", err)
