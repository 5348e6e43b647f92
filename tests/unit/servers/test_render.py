"""Rendering both site templates for every option combination, and the policy files."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from agent.errors import ServerConfigError
from agent.servers.apache import ApacheAdapter
from agent.servers.base import ServerAdapter, adapter_for
from agent.servers.nginx import NginxAdapter
from agent.servers.site import PROFILES, SiteSpec

INTERMEDIATE_CIPHERS = ":".join(PROFILES["intermediate"].ciphers)
COMBINATIONS = list(
    itertools.product(
        ["intermediate", "modern"],
        [False, True],
        [False, True],
        [None, "/etc/ssl/cf-origin-pull-ca.pem"],
        [None, "127.0.1.3"],
    )
)


def make_site(
    profile: str, redirect: bool, hsts: bool, ca: str | None, address: str | None
) -> SiteSpec:
    return SiteSpec(
        name="origin3",
        server_names=("origin3.example.com", "www.origin3.example.com"),
        listen_address=address,
        profile=profile,  # type: ignore[arg-type]
        redirect_http=redirect,
        hsts=hsts,
        client_ca_file=ca,
    )


def _blocks(text: str) -> list[str]:
    """The text of each top-level ``server { ... }`` block."""
    blocks, depth, current = [], 0, []
    for line in text.splitlines():
        if depth == 0 and not line.startswith("server {"):
            continue
        current.append(line)
        depth += line.count("{") - line.count("}")
        if depth == 0:
            blocks.append("\n".join(current))
            current = []
    return blocks


@pytest.mark.parametrize(("profile", "redirect", "hsts", "ca", "address"), COMBINATIONS)
def test_nginx_site_says_exactly_what_was_asked(
    profile: str, redirect: bool, hsts: bool, ca: str | None, address: str | None
) -> None:
    text = NginxAdapter().render_site(make_site(profile, redirect, hsts, ca, address))
    assert "{{" not in text and "{%" not in text
    assert text.count("{") == text.count("}")
    http, https = _blocks(text)
    host = f"{address}:" if address else ""
    assert f"    listen {host}80;" in http
    assert f"    listen {host}443 ssl http2;" in https
    assert ("listen [::]:443 ssl http2;" in https) is (address is None)
    assert "server_name origin3.example.com www.origin3.example.com;" in https
    assert "location ^~ /.well-known/acme-challenge/ {\n        root /var/www/acme;" in http
    assert ("return 308 https://$host$request_uri;" in http) is redirect
    assert ("root /var/www/html;" in http) is (not redirect)
    assert "ssl_certificate /etc/ssl/origin-agent/origin3/current/fullchain.pem;" in https
    assert "ssl_certificate_key /etc/ssl/origin-agent/origin3/current/privkey.pem;" in https
    protocols = "TLSv1.2 TLSv1.3" if profile == "intermediate" else "TLSv1.3"
    assert f"ssl_protocols {protocols};" in https
    assert (f"ssl_ciphers {INTERMEDIATE_CIPHERS};" in https) is (profile == "intermediate")
    assert "ssl_ecdh_curve X25519:prime256v1:secp384r1;" in https
    assert "MLKEM" not in text
    assert ('add_header Strict-Transport-Security "max-age=63072000" always;' in https) is hsts
    assert "Strict-Transport" not in http
    assert (f"ssl_client_certificate {ca};\n    ssl_verify_client on;" in https) is (ca is not None)
    assert "ssl_verify_client" not in http


@pytest.mark.parametrize(("profile", "redirect", "hsts", "ca", "address"), COMBINATIONS)
def test_apache_site_says_exactly_what_was_asked(
    profile: str, redirect: bool, hsts: bool, ca: str | None, address: str | None
) -> None:
    text = ApacheAdapter().render_site(make_site(profile, redirect, hsts, ca, address))
    assert "{{" not in text and "{%" not in text
    http, https = re.findall(r"^<VirtualHost [^>]+>\n.*?^</VirtualHost>$", text, re.S | re.M)
    host = address or "*"
    assert http.startswith(f"<VirtualHost {host}:80>") and https.startswith(
        f"<VirtualHost {host}:443>"
    )
    for block in (http, https):
        assert (
            "    ServerName origin3.example.com\n    ServerAlias www.origin3.example.com\n" in block
        )
    assert "Alias /.well-known/acme-challenge/ /var/www/acme/.well-known/acme-challenge/" in http
    redirect_line = (
        'RedirectMatch 308 "^/(?!\\.well-known/acme-challenge/)(.*)$" '
        '"https://origin3.example.com/$1"'
    )
    assert (redirect_line in http) is redirect
    assert "SSLEngine on" in https and "SSLEngine" not in http
    assert "SSLCertificateFile /etc/ssl/origin-agent/origin3/current/fullchain.pem" in https
    assert "SSLCertificateKeyFile /etc/ssl/origin-agent/origin3/current/privkey.pem" in https
    protocols = "+TLSv1.2 +TLSv1.3" if profile == "intermediate" else "+TLSv1.3"
    assert f"    SSLProtocol -all {protocols}\n" in https
    assert (f"SSLCipherSuite {INTERMEDIATE_CIPHERS}" in https) is (profile == "intermediate")
    assert "SSLOpenSSLConfCmd Curves X25519:prime256v1:secp384r1" in https
    assert ('Header always set Strict-Transport-Security "max-age=63072000"' in https) is hsts
    assert (f"SSLCACertificateFile {ca}\n    SSLVerifyClient require" in https) is (ca is not None)
    assert "SSLVerifyClient" not in http


@pytest.mark.parametrize("adapter", [NginxAdapter(), ApacheAdapter()], ids=["nginx", "apache"])
def test_non_standard_https_port_appears_in_the_redirect(adapter: ServerAdapter) -> None:
    site = SiteSpec(
        name="o",
        server_names=("o.example.com",),
        https_port=8443,
        http_port=8080,
        redirect_http=True,
    )
    text = adapter.render_site(site)
    assert (
        "https://$host:8443$request_uri"
        if adapter.name == "nginx"
        else "https://o.example.com:8443/$1"
    ) in text


@pytest.mark.parametrize("profile", ["intermediate", "modern"])
def test_policy_files_carry_the_profile(profile: str) -> None:
    site = SiteSpec(name="o", server_names=("o.example.com",), profile=profile)  # type: ignore[arg-type]
    nginx = NginxAdapter().render_policy(site)
    apache = ApacheAdapter().render_policy(site)
    if profile == "modern":
        assert "ssl_protocols TLSv1.3;\n" in nginx and "ssl_ciphers" not in nginx
        assert "SSLProtocol -all +TLSv1.3\n" in apache and "SSLCipherSuite" not in apache
    else:
        assert (
            "ssl_protocols TLSv1.2 TLSv1.3;\n" in nginx
            and f"ssl_ciphers {INTERMEDIATE_CIPHERS};" in nginx
        )
        assert "SSLProtocol -all +TLSv1.2 +TLSv1.3\n" in apache
    for line in (
        "ssl_prefer_server_ciphers off;",
        "ssl_session_tickets off;",
        "ssl_ecdh_curve X25519:prime256v1:secp384r1;",
    ):
        assert line in nginx
    assert "SSLHonorCipherOrder off" in apache and "SSLSessionTickets off" in apache


def test_operator_template_replaces_ours(tmp_path: Path) -> None:
    template = tmp_path / "mine.conf.j2"
    template.write_text("# {{ name }} on {{ https_listen }} with {{ fullchain }}\n")
    adapter = adapter_for("nginx", site_template=str(template))
    text = adapter.render_site(SiteSpec(name="o", server_names=("o.example.com",)))
    assert text == "# o on 443 with /etc/ssl/origin-agent/o/current/fullchain.pem\n"


def test_undefined_variable_in_a_template_names_file_and_line(tmp_path: Path) -> None:
    template = tmp_path / "mine.conf.j2"
    template.write_text("server {\n  listen {{ https_listen }};\n  root {{ docroot }};\n}\n")
    with pytest.raises(ServerConfigError) as info:
        adapter_for("nginx", site_template=str(template)).render_site(
            SiteSpec(name="o", server_names=("o.example.com",))
        )
    assert str(info.value) == f"{template}:3: template error: 'docroot' is undefined"


def test_template_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    template = tmp_path / "mine.conf.j2"
    template.write_text("a\nb\n{% if name %}\nc\n")
    with pytest.raises(ServerConfigError) as info:
        adapter_for("apache", site_template=str(template)).render_site(
            SiteSpec(name="o", server_names=("o.example.com",))
        )
    assert str(info.value).startswith(f"{template}:4: template error: Unexpected end of template")


def test_missing_template_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ServerConfigError, match="template not found"):
        adapter_for("nginx", site_template=str(tmp_path / "nope.j2")).render_site(
            SiteSpec(name="o", server_names=("o.example.com",))
        )


def test_a_site_is_rendered_once_per_template_and_site() -> None:
    """The plan check, the argument check and the gather ask for the same text: the second
    ask is served from the cache, a different site is rendered anew, and both texts match a
    fresh render."""
    from agent.servers.base import rendered
    from agent.servers.templating import render_template

    adapter = NginxAdapter()
    site = make_site("intermediate", False, False, None, "127.0.1.3")
    other = make_site("modern", True, True, None, "127.0.1.4")
    rendered.cache_clear()
    first = adapter.render_site(site)
    assert adapter.render_site(site) is first
    assert rendered.cache_info().hits == 1
    assert adapter.render_site(other) != first
    assert rendered.cache_info().misses == 2
    assert first == render_template(adapter.site_template, site.template_vars())
