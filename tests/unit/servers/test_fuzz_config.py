"""Properties: whatever an origin's server prints, the config parsers raise only our one-line
error; the nginx edit undoes to the exact bytes and re-applies to the same text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import ServerConfigError
from agent.servers.adopt import adopt_nginx, unadopt_nginx
from agent.servers.apache_config import parse_apache
from agent.servers.errorlog import server_errors
from agent.servers.nginx_config import parse_dump, split_dump
from agent.servers.site import SiteSpec

pytestmark = pytest.mark.hostile

HEADER = "# configuration file /etc/nginx/nginx.conf:\n"
SITE = SiteSpec(name="a.example.com", server_names=("a.example.com",))


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("{};#\"'\\ \n\t\r\x0cabc$/:*.~()\udcff"), max_size=200))
def test_any_nginx_dump_parses_or_is_one_line_error(body: str) -> None:
    try:
        parse_dump(HEADER + body + "\n")
    except ServerConfigError as err:
        assert "\n" not in str(err)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_any_apache_output_parses_or_is_one_line_error(vhosts: str, includes: str) -> None:
    try:
        parse_apache(vhosts, includes, vhosts)
    except ServerConfigError as err:
        assert "\n" not in str(err)
    server_errors(vhosts, "apache")
    server_errors(includes, "nginx")


_STATEMENTS = st.sampled_from(
    [
        "listen 80;",
        "listen 127.0.0.1:80 default_server;",
        "server_name a.example.com;",
        "# a comment with { and ;",
        'return 200 "}{;";',
        "location / { proxy_pass http://127.0.0.1:8080; }",
        "location /.well-known/acme-challenge/ { root /srv; }",
        "",
    ]
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(_STATEMENTS, max_size=6),
    st.sampled_from(["    ", "\t", "  "]),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
)
def test_nginx_edit_round_trips_and_is_idempotent(
    statements: list[str], indent: str, eol: str, prefix: bool
) -> None:
    head = f"# operator{eol}upstream u {{ server 127.0.0.1:1; }}{eol}" if prefix else ""
    body = "".join(f"{indent}{s}{eol}" for s in statements)
    text = f"{head}server {{ # the app{eol}{body}}}{eol}"
    dump = HEADER.replace("nginx.conf", "s.conf") + text + "\n"
    wrapped = f"{HEADER}http {{{eol}include /etc/nginx/s.conf;{eol}}}\n\n{dump}"
    (server,) = parse_dump(wrapped).servers
    edited = adopt_nginx(text, server, SITE)
    assert unadopt_nginx(edited) == text
    (again,) = parse_dump(wrapped.replace(text, edited)).servers
    assert adopt_nginx(edited, again, SITE) == edited
    assert split_dump(wrapped.replace(text, edited))[1][1] == edited
