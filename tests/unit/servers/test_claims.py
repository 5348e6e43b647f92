"""Who serves a name on a port, and the refusal when two enabled sites claim it."""

from __future__ import annotations

import pytest

from agent.errors import ServerConfigError
from agent.servers.configmap import ConfigMap, Listen, VirtualServer, claims, sole_claim
from tests.unit.servers.recorded import apache, nginx


def test_the_proxy_site_claims_its_names_on_80_and_nobody_claims_443() -> None:
    config = nginx("nginx-debian")
    (claim,) = claims(config, "WWW.App.Example.com", 80)
    assert claim.where == "/etc/nginx/sites-enabled/app.example.com:6"
    assert (claim.match, claim.ssl) == ("exact", False)
    assert claims(config, "app.example.com", 443) == []
    assert sole_claim(config, "unknown.example.com", 80) is None  # the catch-all is no claim


def test_two_enabled_sites_claiming_one_name_is_one_line_naming_both() -> None:
    config = nginx("nginx-duplicate")
    with pytest.raises(ServerConfigError) as err:
        sole_claim(config, "dup.example.com", 80)
    message = str(err.value)
    assert "/etc/nginx/sites-enabled/a.conf:1" in message
    assert "/etc/nginx/sites-enabled/b.conf:2" in message
    assert "\n" not in message
    assert sole_claim(config, "www.dup.example.com", 80) is not None


def test_apache_claims_by_alias() -> None:
    claim = sole_claim(apache(), "www.app.example.com", 80)
    assert claim is not None and claim.where == "/etc/apache2/sites-enabled/app.conf:2"


def _config(*servers: VirtualServer) -> ConfigMap:
    return ConfigMap("nginx", "/etc/nginx/nginx.conf", (), (), servers)


def test_exact_beats_wildcard_beats_regex_and_that_is_no_conflict() -> None:
    on80 = (Listen("*", 80),)
    regex = VirtualServer("/r.conf", 1, on80, (r"~^(?<sub>.+)\.example\.com$",))
    wild = VirtualServer("/w.conf", 1, on80, ("*.example.com",))
    exact = VirtualServer("/e.conf", 1, on80, ("www.example.com",))
    config = _config(regex, wild, exact)
    assert [c.match for c in claims(config, "www.example.com", 80)] == ["exact", "wildcard"]
    claim = sole_claim(config, "www.example.com", 80)
    assert claim is not None and claim.file == "/e.conf"
    assert [c.file for c in claims(config, "a.example.com", 80)] == ["/w.conf"]


def test_the_same_wildcard_twice_is_a_conflict_a_dot_name_matches_its_base() -> None:
    on80 = (Listen("*", 80),)
    config = _config(
        VirtualServer("/a.conf", 3, on80, ("*.example.com",)),
        VirtualServer("/b.conf", 4, on80, ("*.example.com",)),
    )
    with pytest.raises(ServerConfigError, match=r"/a.conf:3 and /b.conf:4 both claim"):
        sole_claim(config, "x.example.com", 80)
    dot = _config(VirtualServer("/d.conf", 1, on80, (".example.com",)))
    assert [c.match for c in claims(dot, "example.com", 80)] == ["wildcard"]


def test_two_enabled_apache_vhosts_claiming_one_name_is_refused_naming_both() -> None:
    config = apache("apache-duplicate")
    with pytest.raises(ServerConfigError) as err:
        sole_claim(config, "DUP.example.com", 80)
    assert str(err.value).startswith(
        "/etc/apache2/sites-enabled/a.conf:1 and /etc/apache2/sites-enabled/b.conf:2 both claim"
    )
    assert "apache serves only the first" in str(err.value)
