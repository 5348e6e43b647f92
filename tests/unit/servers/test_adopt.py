"""Adoption: the marked nginx edit and the Apache :443 twin, on the recorded operators' files."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.errors import ServerConfigError
from agent.servers.adopt import BEGIN, END, adopt_nginx, apache_twin, unadopt_nginx
from agent.servers.nginx_config import parse_dump, split_dump
from agent.servers.site import SiteSpec
from tests import servers_trees as trees
from tests.unit.servers.recorded import apache, nginx, text

SITE = SiteSpec(name="app.example.com", server_names=("app.example.com",))
APP = "/etc/nginx/sites-enabled/app.example.com"


def _edited_dump(new: str) -> str:
    return text("nginx-debian", "nginx-T.txt").replace(trees.NGINX_APP_SITE, new)


def test_nginx_edit_adds_only_marked_lines_to_the_proxy_block() -> None:
    server = nginx("nginx-debian").servers[0]
    edited = adopt_nginx(trees.NGINX_APP_SITE, server, SITE)
    block = edited[edited.index(BEGIN) : edited.index(END) + len(END)]
    assert edited.replace(block + "\n    ", "", 1) == trees.NGINX_APP_SITE
    assert "    listen 443 ssl http2;\n    listen [::]:443 ssl http2;\n" in block
    assert f"ssl_certificate {SITE.cert_dir}/fullchain.pem;" in block
    assert f"ssl_certificate_key {SITE.cert_dir}/privkey.pem;" in block
    assert "location ^~ /.well-known/acme-challenge/ {" in block
    assert edited.index("server {") < edited.index(BEGIN) < edited.index("listen 80;")


def test_nginx_edit_is_idempotent_and_removing_it_gives_the_original_bytes() -> None:
    server = nginx("nginx-debian").servers[0]
    edited = adopt_nginx(trees.NGINX_APP_SITE, server, SITE)
    (again,) = [s for s in parse_dump(_edited_dump(edited)).servers if s.file == APP]
    assert again.certificate and again.ports == (80, 443)
    assert adopt_nginx(edited, again, SITE) == edited
    assert unadopt_nginx(edited) == trees.NGINX_APP_SITE


def test_nginx_edit_follows_a_changed_site_in_place() -> None:
    server = nginx("nginx-debian").servers[0]
    edited = adopt_nginx(trees.NGINX_APP_SITE, server, SITE)
    (again,) = [s for s in parse_dump(_edited_dump(edited)).servers if s.file == APP]
    moved = SiteSpec(name="app.example.com", server_names=("app.example.com",), cert_dir="/c/v2")
    changed = adopt_nginx(edited, again, moved)
    assert changed.count(BEGIN) == 1 and "ssl_certificate /c/v2/fullchain.pem;" in changed
    assert unadopt_nginx(changed) == trees.NGINX_APP_SITE


def test_nginx_edit_refuses_a_block_with_its_own_certificate() -> None:
    static = nginx("nginx-debian").servers[2]
    with pytest.raises(ServerConfigError, match=r"static.conf:1: .*own ssl_certificate"):
        adopt_nginx(trees.NGINX_TLS_SITE, static, SITE)


def test_nginx_edit_keeps_addresses_and_skips_an_existing_acme_location() -> None:
    dump = (
        "# configuration file /etc/nginx/nginx.conf:\nhttp {\n  server {\n"
        "    listen 127.0.1.5:80;\n    server_name app.example.com;\n"
        "    location /.well-known/acme-challenge/ { root /srv/acme; }\n  }\n}\n\n"
    )
    (server,) = parse_dump(dump).servers
    file_text = split_dump(dump)[0][1]
    edited = adopt_nginx(file_text, server, SITE)
    assert "    listen 127.0.1.5:443 ssl http2;\n" in edited
    assert edited.count("acme-challenge") == 1


def test_nginx_edit_refuses_a_brace_followed_by_statements() -> None:
    dump = "# configuration file /n.conf:\nhttp {\nserver { listen 80; server_name a; }\n}\n\n"
    (server,) = parse_dump(dump).servers
    with pytest.raises(ServerConfigError, match=r"^/n.conf:2: .*'\{'"):
        adopt_nginx(split_dump(dump)[0][1], server, SITE)


def test_apache_twin_copies_the_vhost_on_443_with_our_ssl_lines() -> None:
    server = apache().servers[1]
    twin = apache_twin(trees.APACHE_APP_SITE, server, SITE)
    lines = twin.splitlines()
    assert lines[1] == "<VirtualHost *:443>"
    assert lines[-1] == "</VirtualHost>"
    original = trees.APACHE_APP_SITE.splitlines()[2:-1]
    assert lines[2 : 2 + len(original)] == original
    assert f"    SSLCertificateFile {SITE.cert_dir}/fullchain.pem" in lines
    assert "    SSLEngine on" in lines
    assert "/etc/apache2/sites-enabled/app.conf:2" in lines[0]


def test_apache_twin_comments_out_https_redirects_and_replaces_ssl_lines() -> None:
    vhost = (
        "<VirtualHost 10.0.0.1:80 [::1]:80>\n  ServerName a.example.com\n"
        "  RewriteEngine On\n  RewriteCond %{HTTPS} off\n"
        "  RewriteRule ^ https://%{HTTP_HOST}%{REQUEST_URI} [R=301,L]\n"
        "  SSLProxyEngine on\n  SSLEngine off\n</VirtualHost>\n"
    )
    server = apache().servers[1]
    twin = apache_twin(vhost, replace(server, line=1), SITE)
    assert "<VirtualHost 10.0.0.1:443 [::1]:443>" in twin
    assert "# origin-agent: (redirects to https, left out of the twin) RewriteCond" in twin
    assert "# origin-agent: (redirects to https, left out of the twin) RewriteRule" in twin
    assert "  SSLProxyEngine on\n" in twin and "SSLEngine off" not in twin
