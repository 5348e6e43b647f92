"""Where our site file goes, from the recorded effective configurations."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.errors import ServerConfigError
from agent.servers.base import Paths, adapter_for
from agent.servers.layout import place_site
from agent.transport.changes import RunCommand, SwapSymlink
from tests.unit.servers.recorded import apache, nginx


def test_debian_nginx_uses_sites_available_and_a_link() -> None:
    placement = place_site(nginx("nginx-debian"), adapter_for("nginx"), "shop")
    assert placement.path == "/etc/nginx/sites-available/shop.conf"
    assert placement.enable == (
        SwapSymlink("/etc/nginx/sites-enabled/shop.conf", "/etc/nginx/sites-available/shop.conf"),
    )
    assert placement.convention == "sites-enabled"
    assert (placement.include.file, placement.include.line) == ("/etc/nginx/nginx.conf", 60)


@pytest.mark.parametrize("layout", ["debian", "rhel"])
def test_conf_d_only_nginx_gets_a_conf_d_file_and_no_link(layout: str) -> None:
    placement = place_site(nginx("nginx-confd"), adapter_for("nginx", {"layout": layout}), "shop")
    assert (placement.path, placement.enable) == ("/etc/nginx/conf.d/shop.conf", ())


def test_nginx_including_neither_is_refused_naming_the_main_config() -> None:
    config = nginx("nginx-confd")
    config = replace(config, includes=config.includes[:1])
    with pytest.raises(ServerConfigError) as err:
        place_site(config, adapter_for("nginx"), "shop")
    assert str(err.value).startswith("/etc/nginx/nginx.conf: nginx would not load a site file")


def test_debian_apache_uses_a2ensite_and_rhel_httpd_conf_d() -> None:
    debian = place_site(apache(), adapter_for("apache"), "shop")
    assert debian.path == "/etc/apache2/sites-available/shop.conf"
    assert isinstance(debian.enable[-1], RunCommand) and "a2ensite" in debian.enable[-1].argv[0]
    rhel = place_site(apache("apache-rhel"), adapter_for("apache", {"layout": "rhel"}), "shop")
    assert (rhel.path, rhel.enable, rhel.convention) == (
        "/etc/httpd/conf.d/shop.conf",
        (),
        "conf.d",
    )


def test_apache_without_the_main_configs_text_knows_no_directory_include() -> None:
    with pytest.raises(ServerConfigError, match="would not load"):
        place_site(
            apache("apache-rhel", main=False), adapter_for("apache", {"layout": "rhel"}), "x"
        )


def test_rhel_paths() -> None:
    paths = Paths.for_server("apache", {"layout": "rhel"})
    assert (paths.binary, paths.main_config, paths.cert_root) == (
        "/usr/sbin/httpd",
        "/etc/httpd/conf/httpd.conf",
        "/etc/pki/tls/origin-agent",
    )
    assert paths.service == "httpd" and paths.is_default
    with pytest.raises(ValueError, match="unknown layout 'suse'"):
        Paths.for_server("apache", {"layout": "suse"})
