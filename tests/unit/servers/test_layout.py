"""Where our site file goes, from the recorded effective configurations."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.errors import ServerConfigError
from agent.servers.base import Paths, adapter_for
from agent.servers.layout import SiteChoice, choose_site, place_site
from agent.servers.site import SiteSpec
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


def _site(*names: str) -> SiteSpec:
    return SiteSpec(name="shop", server_names=names)


def test_a_name_served_by_an_operators_site_is_adopted_else_we_write_our_own() -> None:
    config = nginx("nginx-debian")
    choice = choose_site(config, _site("app.example.com", "www.app.example.com"))
    assert choice.adopt and choice.server is not None
    assert choice.server.where == "/etc/nginx/sites-enabled/app.example.com:6"
    assert choice.names == ("app.example.com", "www.app.example.com")
    assert choose_site(config, _site("new.example.com")) == SiteChoice(None)


def test_our_own_earlier_site_is_not_adopted() -> None:
    config = nginx("nginx-debian")
    ours = ("/etc/nginx/sites-enabled/app.example.com",)
    assert not choose_site(config, _site("app.example.com"), ours).adopt


def test_names_split_between_sites_or_unserved_are_refused_naming_where() -> None:
    with pytest.raises(ServerConfigError) as err:
        choose_site(nginx("nginx-debian"), _site("app.example.com", "new.example.com"))
    assert "app.example.com by /etc/nginx/sites-enabled/app.example.com:6" in str(err.value)
    assert "new.example.com by none" in str(err.value)


def test_a_name_already_on_tls_elsewhere_and_a_duplicate_claim_are_refused() -> None:
    site = SiteSpec(name="static", server_names=("static.example.com",), https_port=8443)
    with pytest.raises(ServerConfigError, match="already served on port 8443 by .*static.conf:1"):
        choose_site(nginx("nginx-debian"), site)
    with pytest.raises(ServerConfigError, match="a.conf:1 and .*b.conf:2 both claim"):
        choose_site(nginx("nginx-duplicate"), _site("dup.example.com"))


def test_placement_paths_name_our_file_and_its_link() -> None:
    placement = place_site(nginx("nginx-debian"), adapter_for("nginx"), "shop")
    assert placement.paths == (
        "/etc/nginx/sites-available/shop.conf",
        "/etc/nginx/sites-enabled/shop.conf",
    )
