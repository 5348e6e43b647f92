"""What the adapters now know: pid files, error logs, dump argvs, the ACME site, upstreams."""

from __future__ import annotations

import pytest

from agent.errors import ValidationError
from agent.servers.base import adapter_for
from agent.servers.site import SiteSpec
from tests.unit.servers.recorded import apache, nginx, text

SITE = SiteSpec(name="shop", server_names=("shop.example.com",), upstream="http://127.0.0.1:8080")


def test_pid_files_and_error_logs_per_server_and_layout() -> None:
    assert adapter_for("nginx").pid_files == ("/run/nginx.pid",)
    assert adapter_for("apache").pid_files == ("/run/apache2/apache2.pid",)
    rhel = adapter_for("apache", {"layout": "rhel"})
    assert rhel.pid_files == ("/run/httpd/httpd.pid",)
    assert rhel.error_log_path() == "/var/log/httpd/error_log"
    assert adapter_for("apache").error_log_path(apache()) == "/var/log/apache2/error.log"
    assert adapter_for("nginx").error_log_path(nginx("nginx-confd")) == "/var/log/nginx/error.log"


def test_dump_argvs_and_parse_config_round_trip() -> None:
    assert adapter_for("nginx").dump_argvs() == [["/usr/sbin/nginx", "-T"]]
    assert adapter_for("nginx", {"conf_dir": "/srv/n"}).dump_argvs() == [
        ["/usr/sbin/nginx", "-T", "-c", "/srv/n/nginx.conf"]
    ]
    assert adapter_for("apache").dump_argvs() == [
        ["/usr/sbin/apache2ctl", "-S"],
        ["/usr/sbin/apache2ctl", "-t", "-D", "DUMP_INCLUDES"],
    ]
    rhel = adapter_for("apache", {"layout": "rhel", "conf_dir": "/srv/h"})
    assert rhel.dump_argvs()[0] == [
        "/usr/sbin/httpd", "-d", "/srv/h", "-f", "/srv/h/conf/httpd.conf", "-S"
    ]  # fmt: skip
    assert rhel.test_argv()[-1] == "-t" and rhel.reload_argv(True)[-2:] == ["-k", "graceful"]
    config = rhel.parse_config(
        [text("apache-rhel", "httpd-S.txt"), text("apache-rhel", "httpd-DUMP_INCLUDES.txt")]
    )
    assert config.main_config == "/etc/httpd/conf/httpd.conf"


def test_acme_site_and_site_proxy_to_the_upstream() -> None:
    nginx_acme = adapter_for("nginx").render_acme_site(SITE)
    assert "proxy_pass http://127.0.0.1:8080;" in nginx_acme
    assert "location ^~ /.well-known/acme-challenge/" in nginx_acme
    assert nginx_acme.count("proxy_pass") == 1
    assert adapter_for("nginx").render_site(SITE).count("proxy_pass http://127.0.0.1:8080;") == 2
    site = adapter_for("apache").render_site(SITE)
    assert site.count("ProxyPass / http://127.0.0.1:8080/") == 2
    assert site.index("ProxyPass /.well-known/acme-challenge/ !") < site.index("ProxyPass / ")
    steps = adapter_for("apache").enable_steps("shop", SITE)
    assert "proxy_http" in steps[0].argv  # type: ignore[union-attr]
    plain = SiteSpec(name="shop", server_names=("shop.example.com",))
    assert "proxy" not in adapter_for("apache").render_site(plain).lower()


@pytest.mark.parametrize(
    "bad",
    ["http://x;y", "http://a b", "ftp://x", "http://x:99999", "http://x/$uri", "http://x/?a=1",
     "http://x\n", "http://[::1", "http://-bad-/"],
)  # fmt: skip
def test_an_upstream_that_is_not_a_plain_url_is_rejected(bad: str) -> None:
    with pytest.raises(ValidationError, match="upstream"):
        SiteSpec(name="shop", server_names=("shop.example.com",), upstream=bad)
