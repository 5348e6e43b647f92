"""apache2ctl -S / httpd -S and -t -D DUMP_INCLUDES, recorded from the real apache2 2.4."""

from __future__ import annotations

import pytest

from agent.errors import ServerConfigError
from agent.servers.apache_config import parse_includes, vhost_span, with_details
from agent.servers.configmap import Listen
from tests import servers_trees as trees
from tests.unit.servers.recorded import apache, text


def test_debian_vhost_map_names_file_line_port_names_and_aliases() -> None:
    config = apache()
    default, app, ssl = config.servers
    assert (default.file, default.line) == ("/etc/apache2/sites-enabled/000-default.conf", 1)
    assert default.listens == (Listen("*", 80, default_server=True),)
    assert (app.file, app.line) == ("/etc/apache2/sites-enabled/app.conf", 2)
    assert app.names == ("app.example.com", "www.app.example.com")
    assert app.listens == (Listen("*", 80),)
    assert ssl.listens == (Listen("*", 443, default_server=True),)
    assert app.proxy_pass is None  # -S does not say
    assert config.error_log == "/var/log/apache2/error.log"
    assert config.pid_file == "/var/run/apache2/apache2.pid"
    assert config.server_root == "/etc/apache2"


def test_debian_includes_give_files_and_the_main_configs_globs() -> None:
    config = apache()
    assert config.main_config == "/etc/apache2/apache2.conf"
    assert "/etc/apache2/sites-enabled/app.conf" in config.files
    assert config.loads("/etc/apache2/sites-enabled/new.conf") is not None
    assert config.loads("/etc/apache2/sites-enabled/new.txt") is None
    assert apache(main=False).loads("/etc/apache2/sites-enabled/new.conf") is None


def test_rhel_tree_single_vhosts_and_conf_d_include() -> None:
    config = apache("apache-rhel")
    legacy, app, ssl = config.servers
    assert legacy.listens == (Listen("127.0.0.1", 8080, default_server=True),)
    assert (app.file, app.line, app.names) == (
        "/etc/httpd/conf.d/app.conf",
        1,
        ("app.example.com",),
    )
    assert (ssl.file, ssl.line) == ("/etc/httpd/conf.d/ssl.conf", 4)
    assert config.main_config == "/etc/httpd/conf/httpd.conf"
    assert config.pid_file == "/run/httpd/httpd.pid"
    assert config.loads("/etc/httpd/conf.d/new.conf") is not None


def test_details_from_the_files_fill_in_proxy_root_certificate_and_aliases() -> None:
    config = with_details(
        apache("apache-rhel"),
        {
            "/etc/httpd/conf.d/app.conf": trees.RHEL_APP_CONF,
            "/etc/httpd/conf.d/ssl.conf": trees.RHEL_SSL_CONF,
        },
    )
    legacy, app, ssl = config.servers
    assert app.names == ("app.example.com", "www.app.example.com")  # -S lists no alias here
    assert (app.proxy_pass, app.root, app.certificate) == (True, False, False)
    assert ssl.certificate is True and ssl.listens[0].ssl
    assert legacy.proxy_pass is None


def test_include_tree_records_parent_and_line() -> None:
    main, files, includes = parse_includes(text("apache-rhel", "httpd-DUMP_INCLUDES.txt"))
    assert main == "/etc/httpd/conf/httpd.conf"
    assert files[1] == "/etc/httpd/conf.modules.d/00-base.conf"
    assert (includes[0].file, includes[0].line) == (main, 3)
    with pytest.raises(ServerConfigError, match="no main configuration file"):
        parse_includes("Syntax OK\n")


def test_a_vhost_line_that_is_not_a_vhost_is_an_error_naming_file_and_line() -> None:
    with pytest.raises(ServerConfigError, match=r"^/x.conf:1: no <VirtualHost>"):
        vhost_span(trees.APACHE_APP_SITE, 1, "/x.conf")
    assert vhost_span(trees.APACHE_APP_SITE, 2, "/x.conf") == (1, 17)
