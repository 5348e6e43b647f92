from __future__ import annotations

import json

import pytest

from agent.cli import main
from agent.inventory import load
from agent.inventory.export import graph, list_data, list_json

from .conftest import FIXTURES, Write

NESTED = str(FIXTURES / "yaml_nested" / "hosts.yml")


def test_list_has_ansible_inventory_shape(write: Write) -> None:
    path = write(
        "inv.yml",
        """
        all:
          vars: {a: 1}
          hosts: {lone:}
          children:
            web:
              hosts: {w1: {p: 2}}
              children: {eu: {hosts: {w1:}}}
            empty:
    """,
    )
    data = list_data(load([path]))
    assert data == {
        "_meta": {
            "hostvars": {"lone": {"a": 1}, "w1": {"a": 1, "p": 2}},
            "profile": "inventory_legacy",
        },
        "all": {"children": ["ungrouped", "web", "empty"]},
        "ungrouped": {"hosts": ["lone"]},
        "web": {"hosts": ["w1"], "children": ["eu"]},
        "eu": {"hosts": ["w1"]},
    }


def test_list_json_is_sorted_indented_and_keeps_non_ascii(write: Write) -> None:
    path = write("inv.yml", "all:\n  hosts:\n    h: {z: 'é', a: 2020-01-02, n: {2: x, b: y}}\n")
    text = list_json(load([path]))
    assert '"z": "é"' in text and '"a": "2020-01-02"' in text
    assert text.index('"_meta"') < text.index('"all"')
    assert text.splitlines()[1] == '    "_meta": {'
    assert json.loads(text)["_meta"]["hostvars"]["h"]["n"] == {"2": "x", "b": "y"}


def test_hosts_without_variables_are_left_out_of_hostvars(write: Write) -> None:
    data = list_data(load([write("inv.yml", "web:\n  hosts:\n    w:\n")]))
    assert data["_meta"]["hostvars"] == {}


def test_limit_filters_hosts_and_drops_empty_groups() -> None:
    data = list_data(load([NESTED]), limit="db")
    assert set(data["_meta"]["hostvars"]) == {"db1.example.com", "db2.example.com"}
    assert "web" in data and "hosts" not in data["web"]  # web keeps its children only
    assert "ungrouped" not in data


def test_graph_draws_children_before_hosts() -> None:
    lines = graph(load([NESTED]), "eu").splitlines()
    assert lines == [
        "@eu:",
        "  |--@eu_paris:",
        "  |  |--paris1",
        "  |  |--paris3",
        "  |  |--paris5",
        "  |--web02.example.com",
        "  |--web03.example.com",
        "  |--db2.example.com",
    ]


def test_cli_list_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inventory", "-i", NESTED, "--list"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["eu"]["children"] == ["eu_paris"]


def test_cli_host_prints_merged_vars(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inventory", "-i", NESTED, "--host", "web03.example.com"]) == 0
    assert json.loads(capsys.readouterr().out)["layer"] == "host_vars-web03"


def test_cli_graph_default_is_all(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inventory", "-i", NESTED, "--graph"]) == 0
    assert capsys.readouterr().out.startswith("@all:\n  |--@ungrouped:\n")


def test_cli_unknown_host_and_group_fail_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inventory", "-i", NESTED, "--host", "nope"]) == 1
    assert main(["inventory", "-i", NESTED, "--graph", "nope"]) == 1
    err = capsys.readouterr().err
    assert "unknown host 'nope'" in err and "unknown group 'nope'" in err
    assert "Traceback" not in err


def test_cli_reports_every_problem_one_line_each(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write("bad.yml", "all:\n  hostz:\n  children:\n    web:\n      hosts: [a]\n")
    assert main(["inventory", "-i", path, "--list"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert (
        err[0]
        == f"origin-agent: {path}:2:3: unknown key 'hostz' in group 'all'; did you mean 'hosts'?"
    )
    assert err[1].startswith(f"{path}:5:14: 'hosts' of group 'web' must be a mapping")
    assert len(err) == 2


def test_cli_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["inventory", "-i", NESTED])
    assert info.value.code == 2


def test_cli_without_inventory_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inventory", "--list"]) == 1
    assert "no inventory given" in capsys.readouterr().err
