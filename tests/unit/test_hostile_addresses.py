"""An address with a hostile IPv6 scope id never reaches ssh_config, a shell or a config file
(OpenSSH's CVE-2023-51385 class): inventory names, ``ansible_host``, host lists and
``listen_address`` share one validator."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main
from agent.errors import InventoryError, ValidationError
from agent.inventory import Host, connection_spec
from agent.inventory.ranges import expand_entry
from agent.servers.site import SiteSpec

pytestmark = pytest.mark.hostile

# ipaddress refuses "/" in a scope id, so the payload writes into the working directory
EVIL = "::1%x$(touch pwned)"


def test_ansible_host_with_a_command_in_its_scope_id_is_refused() -> None:
    host = Host(name="web1", vars={"ansible_host": "::1%x$(id>pwned)"})
    with pytest.raises(InventoryError) as exc:
        connection_spec(host)
    assert str(exc.value).startswith("web1: ansible_host '::1%x$(id>pwned)': not a host name")


def test_an_inventory_name_with_a_command_in_its_scope_id_is_not_an_address() -> None:
    with pytest.raises(InventoryError, match="not a host name or IP address"):
        connection_spec(Host(name="fe80::1%lo`id>pwned`", vars={}))


def test_an_interface_scope_id_is_still_an_address() -> None:
    assert connection_spec(Host(name="fe80::1%eth0", vars={})).address == "fe80::1%eth0"
    assert expand_entry("[fe80::1%eth0]:2222") == (["fe80::1%eth0"], 2222)


def test_a_host_entry_with_a_hostile_scope_id_is_not_taken_for_an_ipv6_address() -> None:
    # range expansion treats it as a name; connection_spec then refuses it as an address
    names, port = expand_entry("::1%x$(id)")
    assert port is None and names == ["::1%x$(id)"]


@pytest.mark.parametrize(
    "value",
    [
        "::1%lo]:8080;\n    add_header X-Injected yes always;\n    return 200 injected;\n    #",
        "fe80::1%lo]:8443 >\nHeader always set X-Injected yes\n#",
    ],
)
def test_listen_address_with_directives_in_its_scope_id_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as exc:
        SiteSpec(name="o", server_names=("o.example.com",), listen_address=value)
    message = str(exc.value)
    assert message.startswith("site: listen_address: invalid listen address")
    assert "interface name" in message and "\n" not in message


def test_listen_address_keeps_an_interface_scope_id() -> None:
    site = SiteSpec(name="o", server_names=("o.example.com",), listen_address="fe80::1%eth0")
    assert site.listen(443) == "[fe80::1%eth0]:443"


def test_a_match_exec_line_in_ssh_config_never_runs_an_inventory_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text('Match exec "true %h"\n    User deploy\n')
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    web1:\n      ansible_host: '" + EVIL + "'\n")
    plan = tmp_path / "plan.yml"
    plan.write_text("- hosts: all\n  tasks:\n    - command: {cmd: 'true'}\n")
    code = main(["run", str(plan), "-i", str(inv), "--check"])
    err = capsys.readouterr()
    assert not marker.exists()
    assert code != 0
    assert "ansible_host" in err.out + err.err and "Traceback" not in err.out + err.err
