"""The shared validators: addresses (IPv6 scope ids) and URLs a secret is sent to."""

from __future__ import annotations

import pytest

from agent.errors import ValidationError
from agent.validate import check_address, check_secret_url, ip_address

pytestmark = pytest.mark.hostile

HOSTILE_SCOPES = [
    "::1%x$(id>pwned)",
    "fe80::1%lo`id`",
    "fe80::1%lo;id",
    "fe80::1%lo\nListen 1",
    "::1%lo]:8080;\n    return 200 injected;\n    #",
    "fe80::1%lo >",
    "fe80::1%",
    "fe80::1%" + "a" * 16,
    "127.0.0.1%lo",
]


@pytest.mark.parametrize("value", HOSTILE_SCOPES)
def test_an_ipv6_scope_id_that_is_not_an_interface_name_is_not_an_address(value: str) -> None:
    assert ip_address(value) is None
    with pytest.raises(ValidationError) as exc:
        check_address(value, where="web1: listen_address")
    message = str(exc.value)
    assert "\n" not in message and message.startswith("web1: listen_address: invalid address")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("::1", "::1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("fe80::1%2", "fe80::1%2"),
        ("fe80::1%br-lan.10", "fe80::1%br-lan.10"),
        ("127.0.1.5", "127.0.1.5"),
        ("2001:DB8::1", "2001:db8::1"),
    ],
)
def test_plain_addresses_and_interface_scope_ids_are_kept(value: str, expected: str) -> None:
    assert check_address(value, where="w") == expected


def test_a_huge_integer_is_described_not_printed() -> None:
    with pytest.raises(ValidationError) as exc:
        check_address(10**5000, where="w")
    assert len(str(exc.value)) < 200


@pytest.mark.parametrize(
    "url",
    [
        "https://api.cloudflare.com/client/v4",
        "https://ca.example:8888",
        "http://127.0.0.1:8080/dir",
        "http://127.9.9.9",
        "http://[::1]:14000/dir",
        "http://localhost:8888",
    ],
)
def test_https_anywhere_and_http_to_loopback_are_accepted(url: str) -> None:
    assert check_secret_url(url, where="w") == url


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://169.254.169.254/latest", "clear text"),
        ("http://attacker.example/", "clear text"),
        ("http://127.0.0.1.attacker.example/", "clear text"),
        ("https://api.example.com/?token=SECRETQS", "query string"),
        ("https://user:SECRETPW@api.example.com/", "user info"),
        ("file:///etc/shadow", "https://"),
        ("gopher://127.0.0.1/", "https://"),
        ("https://", "https://"),
        ("https://a.example:99999/", "not a valid URL"),
        ("https://a.example/\r\nX: y", "control character"),
        ("", "https://"),
        (5, "https://"),
    ],
)
def test_urls_that_would_leak_a_secret_are_refused_without_echoing_it(
    url: object, said: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        check_secret_url(url, where="issuer cloudflare: base_url")
    message = str(exc.value)
    assert said in message and "\n" not in message
    assert "SECRET" not in message
