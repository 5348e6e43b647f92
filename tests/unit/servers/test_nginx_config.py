"""nginx -T, recorded from the real nginx 1.22 on three trees, parsed into a config map."""

from __future__ import annotations

import pytest

from agent.errors import ServerConfigError
from agent.servers.configmap import Listen
from agent.servers.nginx_config import parse_dump, split_dump
from tests import servers_trees as trees
from tests.unit.servers.recorded import nginx, text


def test_split_dump_gives_back_each_files_exact_bytes() -> None:
    sections = dict(split_dump(text("nginx-debian", "nginx-T.txt")))
    assert sections["/etc/nginx/sites-enabled/app.example.com"] == trees.NGINX_APP_SITE
    assert sections["/etc/nginx/sites-enabled/static.conf"] == trees.NGINX_TLS_SITE


def test_debian_layout_lists_loaded_files_in_order_and_the_directories_it_includes() -> None:
    config = nginx("nginx-debian")
    assert config.main_config == "/etc/nginx/nginx.conf"
    assert config.files == (
        "/etc/nginx/nginx.conf",
        "/etc/nginx/mime.types",
        "/etc/nginx/sites-enabled/app.example.com",
        "/etc/nginx/sites-enabled/default",
        "/etc/nginx/sites-enabled/static.conf",
    )
    http = [(i.pattern, i.line) for i in config.includes if i.context == "http"]
    assert ("/etc/nginx/conf.d/*.conf", 59) in http
    assert ("/etc/nginx/sites-enabled/*", 60) in http
    assert config.error_log == "/var/log/nginx/error.log"
    assert config.pid_file == "/run/nginx.pid"


def test_proxy_pass_site_is_a_server_block_with_its_file_line_ports_and_names() -> None:
    app, default, static = nginx("nginx-debian").servers
    assert (app.file, app.line) == ("/etc/nginx/sites-enabled/app.example.com", 6)
    assert app.listens == (Listen("*", 80), Listen("[::]", 80))
    assert app.names == ("app.example.com", "www.app.example.com")
    assert (app.proxy_pass, app.root, app.certificate) == (True, False, False)
    assert app.locations == ("/", "/static/")
    assert default.names == ("_",) and default.listens[0].default_server
    assert (default.proxy_pass, default.root) == (False, True)
    assert static.listens == (Listen("127.0.0.1", 8443, ssl=True),)
    assert static.certificate is True


def test_conf_d_only_layout_includes_conf_d_and_nothing_else() -> None:
    config = nginx("nginx-confd")
    assert [i.pattern for i in config.includes] == [
        "/etc/nginx/mime.types",
        "/etc/nginx/conf.d/*.conf",
    ]
    assert [s.file for s in config.servers] == [
        "/etc/nginx/conf.d/app.conf",
        "/etc/nginx/conf.d/default.conf",
    ]
    assert config.pid_file == "/var/run/nginx.pid"


def test_loads_follows_glob_rules_of_the_include() -> None:
    config = nginx("nginx-debian")
    assert config.loads("/etc/nginx/sites-enabled/x.conf", "http") is not None
    assert config.loads("/etc/nginx/conf.d/x.conf", "http") is not None
    assert config.loads("/etc/nginx/conf.d/x.txt", "http") is None
    assert config.loads("/etc/nginx/conf.d/sub/x.conf", "http") is None
    assert config.loads("/etc/nginx/sites-enabled/.hidden", "http") is None
    assert nginx("nginx-confd").loads("/etc/nginx/sites-enabled/x.conf") is None


def test_includes_inside_a_server_block_count_for_that_block() -> None:
    dump = (
        "# configuration file /etc/nginx/nginx.conf:\n"
        "http {\n    server {\n        server_name a.example;\n"
        "        include snippets/tls.conf;\n    }\n}\n\n"
        "# configuration file /etc/nginx/snippets/tls.conf:\n"
        "listen 443 ssl;\nssl_certificate /x.pem;\n\n"
    )
    (server,) = parse_dump(dump).servers
    assert server.listens == (Listen("*", 443, ssl=True),)
    assert server.certificate is True


def test_not_a_dump_and_unparsable_files_are_one_line_errors() -> None:
    with pytest.raises(ServerConfigError, match="printed no configuration file"):
        parse_dump("nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n")
    bad = "# configuration file /etc/nginx/nginx.conf:\nhttp {\n server {\n\n"
    with pytest.raises(ServerConfigError) as err:
        parse_dump(bad)
    assert str(err.value).startswith("/etc/nginx/nginx.conf:")
    assert "\n" not in str(err.value)
