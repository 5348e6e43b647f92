from __future__ import annotations

import pytest

from agent.errors import InventoryError
from agent.inventory import load
from agent.inventory.problems import InventoryProblems

from .conftest import Write


def problems_of(path: str) -> list[str]:
    with pytest.raises(InventoryError) as info:
        load([path])
    err = info.value
    lines = str(err).splitlines()
    if isinstance(err, InventoryProblems):
        assert len(lines) == len(err.problems)
    else:
        assert len(lines) == 1
    return lines


def test_groups_children_hosts_and_vars_are_loaded(write: Write) -> None:
    path = write(
        "hosts.yml",
        """
        all:
          vars: {ntp: 10.0.0.1}
          hosts:
            lone:
          children:
            web:
              hosts:
                web[1:2]: {port: 2222}
              children:
                eu:
                  hosts: {web2:}
            db:
              hosts: db1
    """,
    )
    inv = load([path])
    assert list(inv.hosts) == ["lone", "web1", "web2", "db1"]
    assert inv.groups["web"].hosts == ["web1", "web2"]
    assert inv.groups["web"].children == ["eu"]
    assert inv.groups["all"].children == ["ungrouped", "web", "db"]
    assert inv.groups["ungrouped"].hosts == ["lone"]
    assert inv.hosts["web2"].vars == {"ntp": "10.0.0.1", "port": 2222}
    assert inv.hosts["web2"].groups == ["all", "web", "eu"]


def test_top_level_groups_become_children_of_all(write: Write) -> None:
    inv = load([write("inv.yaml", "web:\n  hosts:\n    w1:\ndb:\n")])
    assert inv.groups["all"].children == ["ungrouped", "web", "db"]
    assert inv.groups["ungrouped"].hosts == []


def test_host_port_suffix_sets_ansible_port(write: Write) -> None:
    inv = load([write("inv.yml", "all:\n  hosts:\n    'h1:2200':\n")])
    assert inv.hosts["h1"].vars == {"ansible_port": 2200}


def test_unknown_group_key_names_file_line_col_and_accepted_keys(write: Write) -> None:
    path = write(
        "inv.yml",
        """
        all:
          children:
            web:
              host:
                w1:
    """,
    )
    (line,) = problems_of(path)
    assert line.startswith(f"{path}:4:7: unknown key 'host' in group 'web'")
    assert "did you mean 'hosts'?" in line


def test_every_problem_in_a_file_is_reported_one_line_each(write: Write) -> None:
    path = write(
        "inv.yml",
        """
        all:
          children:
            web:
              hostz: {}
              hosts:
                "w[1:0]":
                w2: [not, a, mapping]
            db: 42
            123:
    """,
    )
    lines = problems_of(path)
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{path}:4:7",
        f"{path}:6:9",
        f"{path}:7:13",
        f"{path}:8:9",
        f"{path}:9:5",
    ]
    assert "start after end" in lines[1]
    assert "must be a mapping" in lines[2]
    assert "group 'db' must be a mapping" in lines[3]
    assert "must be a string" in lines[4]


def test_yaml_syntax_error_has_line_and_column(write: Write) -> None:
    path = write("inv.yml", "all:\n  hosts:\n    a: [1, 2\n    b: 1\n")
    (line,) = problems_of(path)
    assert line.startswith(f"{path}:4:") and "YAML:" in line


def test_duplicate_keys_are_reported(write: Write) -> None:
    path = write("inv.yml", "all:\n  hosts:\n    a:\n    a:\n")
    (line,) = problems_of(path)
    assert line.startswith(f"{path}:4:5: duplicate key 'a'") and "line 3" in line


def test_vault_values_get_a_clear_message(write: Write) -> None:
    path = write("inv.yml", "all:\n  vars:\n    secret: !vault |\n      $ANSIBLE_VAULT;1.1\n")
    (line,) = problems_of(path)
    assert "ansible-vault" in line and line.startswith(f"{path}:3:")
    assert "ANSIBLE_VAULT" not in line


def test_python_object_tags_are_refused(write: Write) -> None:
    path = write("inv.yml", "all:\n  vars:\n    x: !!python/object/apply:os.system ['true']\n")
    (line,) = problems_of(path)
    assert line.startswith(f"{path}:3:")


def test_plugin_configuration_is_refused(write: Write) -> None:
    (line,) = problems_of(write("inv.yml", "plugin: aws_ec2\n"))
    assert "inventory plugins are not supported" in line


def test_group_loop_is_refused(write: Write) -> None:
    path = write(
        "inv.yml",
        """
        a:
          children:
            b:
              children:
                a:
    """,
    )
    (line,) = problems_of(path)
    assert "creates a loop" in line and line.startswith(f"{path}:3:5:")


def test_merge_keys_and_unsafe_strings_work(write: Write) -> None:
    path = write(
        "inv.yml",
        """
        all:
          vars:
            base: &base {a: 1, b: 2}
            both:
              <<: *base
              b: 3
            raw: !unsafe '{{ not_templated }}'
    """,
    )
    inv = load([path])
    assert inv.groups["all"].vars["both"] == {"a": 1, "b": 3}
    assert inv.groups["all"].vars["raw"] == "{{ not_templated }}"


def test_recursive_alias_is_reported_not_looped(write: Write) -> None:
    (line,) = problems_of(write("inv.yml", "all:\n  vars:\n    x: &a [*a]\n"))
    assert "recursive" in line


def test_empty_yaml_inventory_is_an_error(write: Write) -> None:
    (line,) = problems_of(write("inv.yml", "# nothing\n"))
    assert "empty YAML inventory" in line


def test_missing_source_is_reported(tmp_path: object) -> None:
    with pytest.raises(InventoryError, match="inventory source not found"):
        load(["/nonexistent/inv.yml"])


def test_top_level_section_key_is_reported_with_a_hint(write: Write) -> None:
    path = write("inv.yml", "hosts:\n  web1:\nall:\n  hosts:\n    h:\n")
    (line,) = problems_of(path)
    assert line == (
        f"{path}:1:1: top-level key 'hosts' is not a group name; "
        "top-level keys are groups: put it under 'all:'"
    )


def test_comma_separated_host_list_is_a_source() -> None:
    inv = load(["web1,web2:2222, [::1]:2200,"])
    assert list(inv.hosts) == ["web1", "web2", "::1"]
    assert inv.groups["ungrouped"].hosts == ["web1", "web2", "::1"]
    assert inv.hosts["web2"].vars == {"ansible_port": 2222}


def test_directory_source_reads_each_file_and_skips_others(write: Write) -> None:
    write("inv/10-web.yml", "web:\n  hosts:\n    w1:\n")
    write("inv/20-db", "[db]\nd1\n")
    write("inv/README.md", "not an inventory\n")
    write("inv/group_vars/all.yml", "x: 1\n")
    folder = write("inv/.keep", "")
    inv = load([folder.rsplit("/", 1)[0]])
    assert list(inv.hosts) == ["w1", "d1"]
    assert inv.hosts["d1"].vars == {"x": 1}
