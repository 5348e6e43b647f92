from __future__ import annotations

from typing import Any

import pytest

from agent.errors import InventoryError
from agent.inventory import ConnectionSpec, Host, connection_spec


def spec(name: str = "web1", **variables: Any) -> ConnectionSpec:
    return connection_spec(Host(name=name, vars=variables))


def test_defaults_are_safe() -> None:
    assert spec() == ConnectionSpec(name="web1", address="web1")


def test_our_names() -> None:
    got = spec(
        host="127.0.1.3",
        port=2222,
        user="deploy",
        key_file="/k/id",
        known_hosts="/k/kh",
        password_env="SSH_PW",
        become=True,
        become_user="www-data",
        become_password_env="SUDO_PW",
        connection="ssh",
        connect_timeout=5,
    )
    assert got == ConnectionSpec(
        name="web1",
        address="127.0.1.3",
        port=2222,
        user="deploy",
        key_file="/k/id",
        known_hosts="/k/kh",
        password_env="SSH_PW",
        become=True,
        become_user="www-data",
        become_password_env="SUDO_PW",
        connection="ssh",
        connect_timeout=5.0,
    )


def test_ansible_aliases() -> None:
    got = spec(
        ansible_host="10.0.0.9",
        ansible_port="2200",
        ansible_user="admin",
        ansible_ssh_private_key_file="~/id",
        ansible_become="yes",
        ansible_become_user="root",
        ansible_connection="local",
        ansible_ssh_common_args="-o ProxyJump=x",  # ignored
    )
    assert got.address == "10.0.0.9" and got.port == 2200 and got.user == "admin"
    assert got.key_file is not None and not got.key_file.startswith("~")
    assert got.become is True and got.connection == "local"


def test_same_setting_both_ways_with_same_value_is_fine() -> None:
    assert spec(port=22, ansible_port="22").port == 22


def test_same_setting_both_ways_with_different_values_names_the_host() -> None:
    with pytest.raises(InventoryError) as info:
        spec(port=22, ansible_port=2222)
    assert str(info.value).startswith("web1: port (22) and ansible_port (2222) disagree")


@pytest.mark.parametrize(
    ("variables", "what"),
    [
        ({"port": 0}, "port"),
        ({"port": "22; rm"}, "port"),
        ({"port": True}, "port"),
        ({"host": "a;b"}, "host"),
        ({"host": "a\nb"}, "host"),
        ({"user": "r oot"}, "user"),
        ({"become": "maybe"}, "become"),
        ({"connection": "winrm"}, "connection"),
        ({"connect_timeout": -1}, "connect_timeout"),
        ({"password_env": "A-B"}, "password_env"),
        ({"key_file": "a\x00b"}, "key_file"),
    ],
)
def test_invalid_values_name_host_and_variable(variables: dict[str, Any], what: str) -> None:
    with pytest.raises(InventoryError, match=rf"^web1: {what} "):
        spec(**variables)


def test_inventory_passwords_are_refused_without_echoing_them() -> None:
    with pytest.raises(InventoryError) as info:
        spec(ansible_become_password="hunter2")
    assert "hunter2" not in str(info.value) and "become_password_env" in str(info.value)


def test_name_that_is_not_a_hostname_needs_host() -> None:
    with pytest.raises(InventoryError, match="set host"):
        spec(name="web@1")
    assert spec(name="web@1", host="10.0.0.1").address == "10.0.0.1"


@pytest.mark.parametrize("var", ["ansible_host", "ansible_ssh_host", "host"])
@pytest.mark.parametrize("value", ["::1%x$(id>pwned)", "fe80::1%lo`id`", "::1%lo\nid", "a;b"])
def test_an_extra_var_address_is_refused_like_an_inventory_one(var: str, value: str) -> None:
    from agent.inventory import with_overrides

    host = Host("web1", {"ansible_host": "127.0.0.1"})
    with pytest.raises(InventoryError) as err:
        connection_spec(with_overrides(host, {var: value}))
    assert "\n" not in str(err.value) and str(err.value).startswith("web1:")


def test_an_extra_var_address_replaces_every_alias_of_the_inventory_one() -> None:
    from agent.inventory import with_overrides

    host = Host("web1", {"ansible_host": "127.0.0.1", "ansible_ssh_host": "127.0.0.1"})
    spec = connection_spec(with_overrides(host, {"ansible_host": "127.0.0.2", "x": 1}))
    assert spec.address == "127.0.0.2"
    assert host.vars["ansible_host"] == "127.0.0.1"  # the inventory's host is not changed
