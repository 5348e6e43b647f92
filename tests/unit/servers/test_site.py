"""SiteSpec validation: whatever could break out of a config line is refused, naming the field."""

from __future__ import annotations

import pytest

from agent.errors import ValidationError
from agent.servers.site import SiteSpec


def test_defaults_are_the_safe_ones() -> None:
    site = SiteSpec(name="origin1", server_names=("origin1.example.com",))
    assert site.cert_dir == "/etc/ssl/origin-agent/origin1/current"
    assert site.profile == "intermediate"
    assert (site.redirect_http, site.hsts, site.client_ca_file) == (False, False, None)
    assert (site.https_port, site.http_port, site.acme_webroot) == (443, 80, "/var/www/acme")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "origin1;rm"),
        ("name", "*.example.com"),
        ("server_names", ("ok.example.com", "bad.example.com\nserver_name evil")),
        ("server_names", ("a{b}.example.com",)),
        ("server_names", ('"quoted".example.com',)),
        ("server_names", ()),
        ("server_names", "origin1.example.com"),
        ("listen_address", "127.0.1.1; include /etc/passwd"),
        ("listen_address", "localhost"),
        ("https_port", 0),
        ("https_port", "443;"),
        ("http_port", True),
        ("cert_dir", "/etc/ssl/x;y"),
        ("cert_dir", "relative/path"),
        ("cert_dir", "/etc/ssl/../../root"),
        ("acme_webroot", "/var/www/acme}"),
        ("client_ca_file", "/etc/ssl/ca pem"),
        ("document_root", '/var/www/"html"'),
        ("profile", "old"),
        ("redirect_http", "yes"),
        ("hsts", 1),
    ],
)
def test_bad_values_are_rejected_naming_the_field(field: str, value: object) -> None:
    args: dict[str, object] = {"name": "origin1", "server_names": ("origin1.example.com",)}
    args[field] = value
    with pytest.raises(ValidationError) as info:
        SiteSpec(**args)  # type: ignore[arg-type]
    assert f"site: {field}" in str(info.value)


def test_same_port_twice_is_rejected() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        SiteSpec(name="o", server_names=("o.example.com",), https_port=8080, http_port=8080)


def test_from_mapping_lists_accepted_keys_for_an_unknown_one() -> None:
    with pytest.raises(ValidationError) as info:
        SiteSpec.from_mapping(
            {"name": "o", "server_names": ["o.example.com"], "redirect": True},
            where="inventory.yml: origin1",
        )
    text = str(info.value)
    assert text.startswith("inventory.yml: origin1: unknown key 'redirect'")
    assert "redirect_http" in text and "client_ca_file" in text


def test_from_mapping_names_the_source_of_a_bad_value() -> None:
    with pytest.raises(ValidationError) as info:
        SiteSpec.from_mapping(
            {"name": "o", "server_names": ["o.example.com"], "https_port": 70000},
            where="host origin1",
        )
    assert str(info.value) == "host origin1: https_port: invalid port 70000"


def test_from_mapping_requires_name_and_server_names() -> None:
    with pytest.raises(ValidationError, match="missing key 'server_names'"):
        SiteSpec.from_mapping({"name": "o"})


def test_ipv6_listen_address_is_bracketed() -> None:
    site = SiteSpec(name="o", server_names=("o.example.com",), listen_address="::1")
    assert site.listen(443) == "[::1]:443"
    assert site.template_vars()["vhost_host"] == "[::1]"


def test_apache_server_name_skips_wildcards() -> None:
    site = SiteSpec(name="o", server_names=("*.example.com", "example.com"))
    assert site.primary_name == "example.com"
    assert site.template_vars()["aliases"] == ["*.example.com"]


def test_a_name_given_twice_is_kept_once_in_its_first_spelling() -> None:
    site = SiteSpec(
        name="a", server_names=("www.a.example", "a.example", "WWW.A.example", "a.example")
    )
    assert site.server_names == ("www.a.example", "a.example")
