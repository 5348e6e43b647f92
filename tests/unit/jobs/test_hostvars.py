"""`status`, `pins` and `promote` see host variables as a plan does: templates rendered."""

from __future__ import annotations

import pytest

from agent.errors import PlanError
from agent.inventory import Host
from agent.jobs import pins, promote
from agent.jobs.hostvars import rendered
from tests.tlscerts import NOW


def test_templated_tls_names_are_rendered_with_the_inventory_hostname() -> None:
    host = Host(
        "web01.eu.example.com",
        {
            "tls_names": ["{{ inventory_hostname }}", "www.{{ domain }}"],
            "domain": "example.com",
            "issuer": {"backend": "localca", "dir": "{{ ca }}"},
            "ca": "./ca",
            "cloudflare_zone": "{{ zone }}",
            "zone": "023e105f",
            "https_port": "{{ 8443 }}",
        },
        groups=["all", "private_ca"],
    )
    got = rendered(host).vars
    assert got["tls_names"] == ["web01.eu.example.com", "www.example.com"]
    assert got["issuer"] == {"backend": "localca", "dir": "./ca"}
    assert got["cloudflare_zone"] == "023e105f" and got["https_port"] == 8443
    assert host.vars["tls_names"][0] == "{{ inventory_hostname }}"  # the inventory is untouched


def test_group_names_are_set_as_in_a_play() -> None:
    host = Host("h", {"tls_names": ["{{ group_names[0] }}.example.com"]}, groups=["all", "eu"])
    assert rendered(host).vars["tls_names"] == ["eu.example.com"]


def test_a_variable_the_jobs_do_not_read_is_left_alone() -> None:
    host = Host("h", {"motd": "{{ only_in_a_play }}", "tls_names": ["h.example.com"]})
    assert rendered(host).vars["motd"] == "{{ only_in_a_play }}"


def test_an_undefined_variable_is_a_plan_error_naming_the_host() -> None:
    with pytest.raises(PlanError, match="web9") as err:
        rendered(Host("web9", {"tls_names": ["{{ nope }}"]}))
    assert "nope" in str(err.value)


def test_pins_and_promote_use_the_rendered_names() -> None:
    host = Host(
        "web01.example.test",
        {
            "tls_names": ["{{ inventory_hostname }}"],
            "cloudflare_zone": "{{ 'z' ~ 1 }}",
            "ansible_host": "127.0.0.1",
            "ansible_port": 9,  # discard: nothing listens, refused at once
            "https_port": 9,
        },
    )
    (row,) = pins.collect([host], timeout=2.0)
    assert row.name == "web01.example.test", row
    assert [h.name for h in promote.zone_hosts([host], "z1")] == ["web01.example.test"]


def test_status_refuses_a_trust_bundle_that_holds_no_certificate_before_probing() -> None:
    from agent.jobs import status
    from agent.pki.inspect import PemError

    with pytest.raises(PemError, match="^--trust: no PEM certificate found$"):
        status.collect([Host("h")], now=NOW, extra_trust="junk", use_state=False)
