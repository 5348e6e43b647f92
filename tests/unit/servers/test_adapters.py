"""Adapter argv, paths, detection, config-test parsing and main-config edits (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ServerConfigError, ValidationError
from agent.servers.apache import ApacheAdapter
from agent.servers.base import Paths, adapter_for, detect_argv, parse_detect
from agent.servers.nginx import NginxAdapter
from agent.servers.site import SiteSpec
from agent.transport.changes import RunCommand, SwapSymlink

FIXTURES = Path(__file__).parents[2] / "fixtures" / "servers"
SITE = SiteSpec(name="origin1", server_names=("origin1.example.com",))
LAB_SITE = SiteSpec(
    name="origin4", server_names=("origin4.example.com",), listen_address="127.0.1.4"
)

# Recorded on Debian 12 (nginx 1.22.1, Apache 2.4.71).
NGINX_UNKNOWN = (
    '2026/11/27 17:23:57 [emerg] 32468#32468: unknown directive "bogus_directive" in '
    "/etc/nginx/sites-enabled/origin1.conf:5\n"
    "nginx: configuration file /etc/nginx/nginx.conf test failed\n"
)
NGINX_NO_CERT = (
    "2026/11/27 17:23:57 [emerg] 32470#32470: "
    'cannot load certificate "/nonexistent/fullchain.pem": '
    "BIO_new_file() failed (SSL: error:80000002:system library::No such file or directory)\n"
    "nginx: configuration file /etc/nginx/nginx.conf test failed\n"
)
NGINX_OK = (
    "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n"
    "nginx: configuration file /etc/nginx/nginx.conf test is successful\n"
)
APACHE_SYNTAX = (
    "AH00526: Syntax error on line 8 of /etc/apache2/sites-enabled/origin1.conf:\n"
    "Invalid command 'NoSuchDirective', perhaps misspelled or defined by a module not included in "
    "the server configuration\nAction 'configtest' failed.\n"
    "The Apache error log may have more information.\n"
)


def test_debian_defaults() -> None:
    nginx, apache = NginxAdapter(), ApacheAdapter()
    assert nginx.site_path("origin1") == "/etc/nginx/sites-available/origin1.conf"
    assert nginx.paths.policy_file == "/etc/nginx/conf.d/origin-agent-tls.conf"
    assert apache.site_path("origin1") == "/etc/apache2/sites-available/origin1.conf"
    assert apache.main_config_path == "/etc/apache2/ports.conf"
    assert nginx.test_argv() == ["/usr/sbin/nginx", "-t"]
    assert nginx.reload_argv(systemd=True) == ["systemctl", "reload", "nginx"]
    assert nginx.reload_argv(systemd=False) == ["/usr/sbin/nginx", "-s", "reload"]
    assert nginx.start_argv() == ["/usr/sbin/nginx"]
    assert apache.test_argv() == ["/usr/sbin/apache2ctl", "configtest"]
    assert apache.reload_argv(systemd=True) == ["systemctl", "reload", "apache2"]
    assert apache.reload_argv(systemd=False) == ["/usr/sbin/apache2ctl", "graceful"]
    assert apache.start_argv(systemd=True) == ["systemctl", "start", "apache2"]


def test_overridden_conf_dir_moves_every_derived_path_and_the_argv() -> None:
    nginx = adapter_for("nginx", {"conf_dir": "/srv/nginx"})
    assert nginx.paths.main_config == "/srv/nginx/nginx.conf"
    assert nginx.site_path("a") == "/srv/nginx/sites-available/a.conf"
    assert nginx.test_argv() == ["/usr/sbin/nginx", "-t", "-c", "/srv/nginx/nginx.conf"]
    assert nginx.reload_argv(systemd=True) == [
        "/usr/sbin/nginx",
        "-c",
        "/srv/nginx/nginx.conf",
        "-s",
        "reload",
    ]
    apache = adapter_for("apache2", {"conf_dir": "/etc/apache2-lab"})
    assert apache.test_argv() == [
        "env",
        "APACHE_CONFDIR=/etc/apache2-lab",
        "/usr/sbin/apache2ctl",
        "configtest",
    ]
    assert apache.paths.ports_config == "/etc/apache2-lab/ports.conf"


def test_an_explicit_path_wins_over_the_derived_one() -> None:
    paths = Paths.for_server("nginx", {"conf_dir": "/srv/nginx", "sites_available": "/srv/sites"})
    assert (
        paths.sites_available == "/srv/sites" and paths.sites_enabled == "/srv/nginx/sites-enabled"
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"conf_dir": "/etc/nginx;rm"}, "server_paths: conf_dir: invalid path"),
        ({"confdir": "/etc/nginx"}, "unknown key 'confdir'"),
    ],
)
def test_bad_path_overrides_are_rejected(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        adapter_for("nginx", overrides)


def test_unknown_server_is_rejected() -> None:
    with pytest.raises(ValidationError, match="unknown web server 'lighttpd'"):
        adapter_for("lighttpd")


def test_enable_steps() -> None:
    assert NginxAdapter().enable_steps("origin1") == [
        SwapSymlink(
            "/etc/nginx/sites-enabled/origin1.conf", "/etc/nginx/sites-available/origin1.conf"
        )
    ]
    steps = ApacheAdapter().enable_steps("origin1")
    assert all(isinstance(s, RunCommand) for s in steps)
    assert [s.argv for s in steps if isinstance(s, RunCommand)] == [
        ("/usr/sbin/a2enmod", "-q", "ssl", "headers"),
        ("/usr/sbin/a2enconf", "-q", "origin-agent-tls"),
        ("/usr/sbin/a2ensite", "-q", "origin1"),
    ]
    last = steps[-1]
    assert isinstance(last, RunCommand) and last.unless == (
        ("test", "-e", "/etc/apache2/sites-enabled/origin1.conf"),
    )


def test_detection_needs_binary_and_config_dir() -> None:
    assert detect_argv() == [
        "ls",
        "-1d",
        "--",
        "/usr/sbin/nginx",
        "/etc/nginx",
        "/usr/sbin/apache2",
        "/etc/apache2",
    ]
    assert parse_detect("/usr/sbin/nginx\n/etc/nginx\n") == ("nginx",)
    assert parse_detect("/usr/sbin/apache2\n/etc/apache2\n/usr/sbin/nginx\n") == ("apache",)
    assert parse_detect("/usr/sbin/nginx\n/etc/nginx\n/usr/sbin/apache2\n/etc/apache2/\n") == (
        "nginx",
        "apache",
    )
    assert parse_detect("") == ()


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            NGINX_UNKNOWN,
            ("/etc/nginx/sites-enabled/origin1.conf", 5, 'unknown directive "bogus_directive"'),
        ),
        (
            NGINX_NO_CERT,
            (
                "",
                0,
                'cannot load certificate "/nonexistent/fullchain.pem": BIO_new_file() failed '
                "(SSL: error:80000002:system library::No such file or directory)",
            ),
        ),
    ],
)
def test_nginx_config_test_output_is_located(output: str, expected: tuple[str, int, str]) -> None:
    problem = NginxAdapter().parse_test_output(output)
    assert problem is not None and (problem.file, problem.line, problem.message) == expected


def test_nginx_success_output_has_no_problem() -> None:
    assert NginxAdapter().parse_test_output(NGINX_OK) is None


def test_apache_config_test_output_is_located() -> None:
    problem = ApacheAdapter().parse_test_output(APACHE_SYNTAX)
    assert problem is not None
    assert (problem.file, problem.line) == ("/etc/apache2/sites-enabled/origin1.conf", 8)
    assert problem.message.startswith("Invalid command 'NoSuchDirective'")


# -- nginx.conf: the http{}-level TLS policy -----------------------------------------------------


def test_debian_nginx_conf_hands_its_two_tls_lines_to_our_policy() -> None:
    before = (FIXTURES / "debian12-nginx.conf").read_text()
    after = NginxAdapter().edit_main_config(before, SITE)
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert changed == [
        (
            "\tssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # Dropping SSLv3, ref: POODLE",
            "\t# origin-agent: ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; "
            "# Dropping SSLv3, ref: POODLE  (set in /etc/nginx/conf.d/origin-agent-tls.conf)",
        ),
        (
            "\tssl_prefer_server_ciphers on;",
            "\t# origin-agent: ssl_prefer_server_ciphers on;  "
            "(set in /etc/nginx/conf.d/origin-agent-tls.conf)",
        ),
    ]
    assert NginxAdapter().edit_main_config(after, SITE) == after


def test_policy_include_is_added_when_conf_d_is_not_included() -> None:
    text = (
        "events {}\nhttp {\n    ssl_protocols TLSv1.2;\n"
        "    include /etc/nginx/sites-enabled/*;\n}\n"
    )
    after = NginxAdapter().edit_main_config(text, SITE)
    assert after.splitlines()[1:4] == [
        "http {",
        "\t# origin-agent: TLS policy for every server",
        "\tinclude /etc/nginx/conf.d/origin-agent-tls.conf;",
    ]
    assert NginxAdapter().edit_main_config(after, SITE) == after


def test_relative_include_of_conf_d_counts() -> None:
    text = "http {\n  include conf.d/*.conf;\n}\n"
    assert NginxAdapter().edit_main_config(text, SITE) == text


def test_tls_directives_inside_server_blocks_are_left_alone() -> None:
    text = (
        "http {\n  include conf.d/*.conf;\n  server {\n    listen 443 ssl;\n"
        "    ssl_protocols TLSv1.3;\n  }\n  # ssl_protocols TLSv1;\n}\n"
        "stream {\n  ssl_protocols TLSv1.2;\n}\n"
    )
    assert NginxAdapter().edit_main_config(text, SITE) == text


@pytest.mark.parametrize(
    "line", ["ssl_protocols TLSv1.2; ssl_ciphers HIGH;", "ssl_protocols TLSv1.2"]
)
def test_a_directive_we_cannot_isolate_is_an_error_with_file_and_line(line: str) -> None:
    text = f"http {{\n  include conf.d/*.conf;\n  {line}\n  TLSv1.3;\n}}\n"
    with pytest.raises(ServerConfigError) as info:
        NginxAdapter().edit_main_config(text, SITE)
    assert str(info.value).startswith("/etc/nginx/nginx.conf:3: cannot take over 'ssl_protocols'")


def test_nginx_conf_without_http_block_is_an_error() -> None:
    with pytest.raises(ServerConfigError, match="no http"):
        NginxAdapter().edit_main_config("events {}\n", SITE)


# -- ports.conf: Apache listeners -----------------------------------------------------------------


def test_debian_ports_conf_is_enough_without_a_listen_address() -> None:
    text = (FIXTURES / "debian12-ports.conf").read_text()
    assert ApacheAdapter().edit_main_config(text, SITE) == text


def test_listen_address_rewrites_wildcards_and_leaves_gnutls_alone() -> None:
    text = (FIXTURES / "debian12-ports.conf").read_text()
    after = ApacheAdapter().edit_main_config(text, LAB_SITE)
    body = [
        line
        for line in after.splitlines()
        if line.strip()
        and not line.startswith("# If")
        and not line.startswith("# have")
        and not line.startswith("# /etc")
    ]
    assert body == [
        "# origin-agent: was: Listen 80",
        "Listen 127.0.1.4:80",
        "<IfModule ssl_module>",
        "\t# origin-agent: was: Listen 443",
        "\tListen 127.0.1.4:443",
        "</IfModule>",
        "<IfModule mod_gnutls.c>",
        "\tListen 443",
        "</IfModule>",
    ]
    assert ApacheAdapter().edit_main_config(after, LAB_SITE) == after


def test_lab_ports_conf_gets_the_https_listener_appended() -> None:
    text = "Listen 127.0.1.4:80\n"
    after = ApacheAdapter().edit_main_config(text, LAB_SITE)
    assert after == text + "# origin-agent: listeners for site origin4\nListen 127.0.1.4:443\n"


def test_non_standard_https_port_is_marked_https() -> None:
    site = SiteSpec(name="o", server_names=("o.example.com",), https_port=8443, http_port=8080)
    after = ApacheAdapter().edit_main_config("Listen 80\n", site)
    assert after.endswith("Listen 8080\nListen 8443 https\n")
