from __future__ import annotations

import logging

import pytest

from agent.inventory import load, merge_layers

from .conftest import FIXTURES, Write
from .test_yaml import problems_of


def test_each_layer_overrides_the_one_before() -> None:
    inv = load([str(FIXTURES / "precedence" / "hosts.yml")])
    assert inv.hosts["h1"].vars == {
        "v1": "group_vars_all",  # group_vars/all beats all's inline vars
        "v2": "parent",  # parent group beats all
        "v3": "child",  # a deeper group beats a shallower one (child is below parent)
        "v4": "group_vars_child",  # group_vars/ files beat inline group vars; child beats parent
        "v5": "host",  # host inline beats every group
        "v6": "host_vars",  # host_vars/ beats everything
        "v7": "zz_sibling",  # same depth (parent, zz_sibling): later name wins
    }


def test_child_group_beats_parent_group(write: Write) -> None:
    path = write(
        "inv.yml",
        """
        all:
          children:
            parent:
              vars: {x: parent}
              children:
                child:
                  vars: {x: child}
                  hosts: {h:}
    """,
    )
    assert load([path]).hosts["h"].vars == {"x": "child"}


def test_group_priority_breaks_ties_between_groups_of_equal_depth(write: Write) -> None:
    path = write(
        "inv.yml",
        """
        a_first:
          vars: {x: a, ansible_group_priority: 10}
          hosts: {h:}
        b_second:
          vars: {x: b}
          hosts: {h:}
    """,
    )
    inv = load([path])
    assert inv.hosts["h"].vars == {"x": "a"}
    assert "ansible_group_priority" not in inv.groups["a_first"].vars


def test_later_source_wins_for_inline_vars(write: Write) -> None:
    one = write("one.yml", "all:\n  hosts:\n    h: {x: one, y: one}\n")
    two = write("two.ini", "h x=two\n")
    inv = load([one, two])
    assert inv.hosts["h"].vars == {"x": "two", "y": "one"}


def test_values_are_replaced_not_deep_merged(write: Write) -> None:
    path = write(
        "inv.yml",
        """
        all:
          vars: {tls: {mode: full, hsts: true}}
          hosts:
            h: {tls: {mode: strict}}
    """,
    )
    assert load([path]).hosts["h"].vars == {"tls": {"mode": "strict"}}


def test_group_vars_directory_files_merge_in_name_order(write: Write) -> None:
    inv_path = write("inv.yml", "web:\n  hosts:\n    w:\n")
    write("group_vars/web/20-b.yml", "x: b\ny: b\n")
    write("group_vars/web/10-a", "x: a\nz: a\n")
    write("group_vars/web/sub/30-c.yaml", "y: c\n")
    write("group_vars/web/.hidden.yml", "x: hidden\n")
    write("group_vars/web/skip.txt", "x: txt\n")
    write("group_vars/web/backup~", "x: backup\n")
    inv = load([inv_path])
    assert inv.hosts["w"].vars == {"x": "b", "y": "c", "z": "a"}
    assert inv.groups["web"].vars == {"x": "b", "y": "c", "z": "a"}


def test_host_vars_file_without_extension(write: Write) -> None:
    inv_path = write("inv.yml", "all:\n  hosts:\n    h1:\n")
    write("host_vars/h1", "from_file: 1\n")
    assert load([inv_path]).hosts["h1"].vars == {"from_file": 1}


def test_vars_given_two_ways_is_an_error(write: Write) -> None:
    inv_path = write("inv.yml", "web:\n  hosts:\n    w:\n")
    write("group_vars/web.yml", "x: 1\n")
    write("group_vars/web/a.yml", "x: 2\n")
    (line,) = problems_of(inv_path)
    assert "given twice" in line and "group_vars/web.yml" in line


def test_bad_vars_files_are_reported_with_position(write: Write) -> None:
    inv_path = write("inv.yml", "web:\n  hosts:\n    w:\n")
    bad_list = write("group_vars/web.yml", "- a\n- b\n")
    bad_yaml = write("host_vars/w.yml", "x: [1\n")
    lines = problems_of(inv_path)
    assert lines[0].startswith(f"{bad_list}:1:1: a variables file must hold a mapping")
    assert lines[1].startswith(f"{bad_yaml}:2:")


def test_empty_vars_file_is_fine(write: Write) -> None:
    inv_path = write("inv.yml", "web:\n  hosts:\n    w:\n")
    write("group_vars/web.yml", "---\n")
    assert load([inv_path]).hosts["w"].vars == {}


def test_merge_layers_applies_play_then_extra_vars_last_wins() -> None:
    inventory_vars = {"a": 1, "b": 1, "c": 1}
    merged = merge_layers(inventory_vars, {"b": 2, "c": 2}, {"c": 3})
    assert merged == {"a": 1, "b": 2, "c": 3}
    assert inventory_vars == {"a": 1, "b": 1, "c": 1}


def test_vars_files_matching_no_group_or_host_are_warned_about(
    write: Write, caplog: pytest.LogCaptureFixture
) -> None:
    inv_path = write("inv.yml", "web:\n  hosts:\n    w:\n")
    write("group_vars/webb.yml", "x: 1\n")
    write("group_vars/web.yml", "x: 2\n")
    write("host_vars/ww", "y: 1\n")
    with caplog.at_level(logging.WARNING, logger="agent.inventory.varsfiles"):
        inv = load([inv_path])
    assert inv.hosts["w"].vars == {"x": 2}
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2
    assert "group_vars/webb.yml matches no group" in warned[0]
    assert "host_vars/ww matches no host" in warned[1]
