"""dns-01 settings, record names and the bounded wait for the zone's answer (no network)."""

from __future__ import annotations

import pytest

from agent.errors import IssuerError
from agent.pki.issuers.acme_config import AcmeConfig
from agent.pki.issuers.cloudflare_dns import challenge_name
from agent.pki.issuers.dns01 import Dns01Config, wait_visible

BASE = {"backend": "acme", "directory": "https://ca.example/dir"}


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CF_DNS_TOKEN_TEST", "tok-123")
    return "CF_DNS_TOKEN_TEST"


def test_dns01_settings_are_read_with_the_token_kept_secret(token: str) -> None:
    config = AcmeConfig.parse(
        {
            **BASE,
            "challenge": "dns-01",
            "dns_token_env": token,
            "dns_zone": "example.com",
            "dns_servers": ["192.0.2.53", "127.0.0.1:8053", "[2001:db8::53]:5353"],
            "dns_wait": 30,
        }
    )
    assert config.challenge == "dns-01" and config.dns is not None
    assert config.dns.servers == (("192.0.2.53", 53), ("127.0.0.1", 8053), ("2001:db8::53", 5353))
    assert config.dns.wait == 30.0 and config.dns.zone == "example.com"
    assert "tok-123" not in repr(config)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"challenge": "dns-01"}, "dns-01 needs a Cloudflare API token"),
        ({"dns_zone": "example.com"}, "dns_zone only apply with challenge: dns-01"),
        ({"challenge": "tls-alpn-01"}, "challenge 'tls-alpn-01' is not one of http-01, dns-01"),
        (
            {"challenge": "dns-01", "dns_token_env": "T", "dns_servers": ["ns1.example.com"]},
            "dns_servers: 'ns1.example.com' is not an IP address with an optional port",
        ),
        (
            {"challenge": "dns-01", "dns_token_env": "T", "dns_wait": 0},
            "dns_wait must be 1 to 900 seconds",
        ),
        (
            {"challenge": "dns-01", "dns_token_env": "T", "dns_zone": "a", "dns_zone_id": "b"},
            "set either dns_zone_id or dns_zone, not both",
        ),
    ],
    ids=["no-token", "dns-keys-without-dns01", "unknown-challenge", "server", "wait", "zone"],
)
def test_bad_dns01_settings_are_one_clear_line(
    extra: dict[str, object], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T", "tok")
    with pytest.raises(IssuerError) as caught:
        AcmeConfig.parse({**BASE, **extra})
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_dns01_token_inline_is_refused() -> None:
    with pytest.raises(IssuerError, match="unknown key 'dns_token'"):
        AcmeConfig.parse({**BASE, "challenge": "dns-01", "dns_token": "x"})
    with pytest.raises(IssuerError, match="dns-01 needs a Cloudflare API token"):
        Dns01Config.parse({}, backend="acme")


@pytest.mark.parametrize(
    ("name", "record"),
    [
        ("*.h1.origin.test", "_acme-challenge.h1.origin.test"),
        ("H1.Origin.Test.", "_acme-challenge.h1.origin.test"),
    ],
)
def test_challenge_record_names(name: str, record: str) -> None:
    assert challenge_name(name) == record


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_returns_once_every_server_shows_every_value() -> None:
    clock = Clock()
    answers = {("a", 53): [set(), {"v1"}, {"v1", "v2"}], ("b", 53): [{"v1", "v2", "old"}]}

    def lookup(server: tuple[str, int], name: str) -> set[str]:
        seq = answers[server]
        return seq.pop(0) if len(seq) > 1 else seq[0]

    wait_visible(
        {"_acme-challenge.x": {"v1", "v2"}},
        [("a", 53), ("b", 53)],
        wait=30,
        backend="acme",
        lookup=lookup,
        clock=clock,
        sleep=clock.sleep,
    )
    assert clock.now == 4.0  # two polls, two seconds apart


def test_wait_is_bounded_and_names_what_is_missing() -> None:
    clock = Clock()
    with pytest.raises(IssuerError) as caught:
        wait_visible(
            {"_acme-challenge.x": {"v1"}},
            [("192.0.2.53", 53)],
            wait=7,
            backend="acme",
            lookup=lambda server, name: set(),
            clock=clock,
            sleep=clock.sleep,
        )
    assert str(caught.value).startswith(
        "issuer acme: dns-01: _acme-challenge.x TXT not visible at 192.0.2.53:53 after 7s"
    )
    assert clock.now == 7.0


def test_a_dns01_issuer_needs_nothing_served_by_the_origin(token: str) -> None:
    from agent.pki.issuers.acme import AcmeIssuer

    dns = AcmeIssuer.from_config({**BASE, "challenge": "dns-01", "dns_token_env": token})
    http = AcmeIssuer.from_config(BASE)
    assert (dns.needs_http01, http.needs_http01) == (False, True)
    assert {"dns_token_file", "dns_ca_bundle"} <= set(AcmeIssuer.path_keys)
