from __future__ import annotations

import pytest

from agent.errors import InventoryError
from agent.inventory import load
from agent.inventory.inifile import parse_value

from .conftest import Write
from .test_yaml import problems_of


def test_sections_hosts_vars_and_children(write: Write) -> None:
    path = write(
        "hosts.ini",
        """
        lone ansible_port=2201
        [web]
        web[1:2].example.com role=frontend
        edge:8022 note="two words"   # trailing comment
        [web:vars]
        server = nginx
        [eu:children]
        web
        ; a comment
        [all:vars]
        ntp=10.0.0.2
    """,
    )
    inv = load([path])
    assert list(inv.hosts) == ["lone", "web1.example.com", "web2.example.com", "edge"]
    assert inv.groups["ungrouped"].hosts == ["lone"]
    assert inv.groups["eu"].children == ["web"]
    assert inv.hosts["edge"].vars == {
        "ntp": "10.0.0.2",
        "server": "nginx",
        "ansible_port": 8022,
        "note": "two words",
    }
    assert inv.hosts["web1.example.com"].groups == ["all", "eu", "web"]


def test_children_may_be_declared_later_in_the_file(write: Write) -> None:
    inv = load([write("hosts", "[p:children]\nlate\n\n[late]\nh1\n")])
    assert inv.groups["p"].children == ["late"]
    assert inv.groups["all"].children == ["ungrouped", "p"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("22", 22),
        ("True", True),
        ("true", "true"),
        ("0.5", 0.5),
        ("[1, 'a']", [1, "a"]),
        ("{'a': (1, 2)}", {"a": [1, 2]}),
        ("'quoted'", "quoted"),
        ("plain text", "plain text"),
        ("0x10", 16),
        ("1j", "1j"),
        ("...", "..."),
        ("b'x'", "x"),
        ("{1, 2}", [1, 2]),
        ("{(1, 2): 3, b'k': 4}", {"(1, 2)": 3, "k": 4}),
    ],
)
def test_values_are_python_literals_or_text(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_ini_problems_have_file_and_line_and_are_all_reported(write: Write) -> None:
    path = write(
        "hosts.ini",
        """
        [web]
        w1 novalue
        w[3:1]
        [web:weird]
        [bad section]
        [db:children]
        ghost
        [orphan:vars]
        x = 1
        [db]
        d1 'unclosed
    """,
    )
    lines = problems_of(path)
    where = [line.split(": ", 1)[0] for line in lines]
    assert where == [
        f"{path}:2:1",
        f"{path}:3:1",
        f"{path}:4:1",
        f"{path}:5:1",
        f"{path}:11:1",
        f"{path}:7",
        f"{path}:8",
    ]
    assert "expected key=value" in lines[0]
    assert "start after end" in lines[1]
    assert "unknown type 'weird'" in lines[2]
    assert "invalid section header" in lines[3]
    assert "cannot parse host line" in lines[4]
    assert "[db:children] names group 'ghost'" in lines[5]
    assert "[orphan:vars]" in lines[6] and "never declared" in lines[6]


def test_yaml_looking_file_without_extension_reports_yaml_errors(write: Write) -> None:
    path = write("hosts", "all:\n  hosts:\n    a: [1\n")
    with pytest.raises(InventoryError, match=r"hosts:\d+:\d+: YAML"):
        load([path])


def test_extensionless_yaml_mapping_is_read_as_yaml(write: Write) -> None:
    inv = load([write("hosts", "web:\n  hosts:\n    w1:\n")])
    assert inv.groups["web"].hosts == ["w1"]


def test_three_dashes_in_ini_hint_at_yaml(write: Write) -> None:
    (line,) = problems_of(write("x.ini", "---\n"))
    assert "YAML" in line
