"""Inventory YAML that is hostile or careless: !unsafe stays literal, an alias bomb is refused
at load, a FIFO in group_vars is refused instead of hanging the run."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from agent.errors import InventoryError
from agent.inventory import load, yamlload
from agent.plan.vars import Scope

pytestmark = pytest.mark.hostile


def test_an_unsafe_value_is_never_rendered_as_a_template(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    h1:\n"
        "      motd: !unsafe 'literal {{ 7 * 6 }} braces'\n"
        "      more: !unsafe ['{{ lookup }}', {k: '{% for %}'}]\n"
    )
    host = load([str(inv)]).hosts["h1"]
    scope = Scope("h1", [host.vars])
    assert scope.resolve("motd") == "literal {{ 7 * 6 }} braces"
    assert scope.render_text("{{ motd }}", "t") == "literal {{ 7 * 6 }} braces"
    assert scope.resolve("more") == ["{{ lookup }}", {"k": "{% for %}"}]


def test_an_alias_bomb_in_an_inventory_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["all:", "  vars:", "    a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):  # 10**7 values once expanded
        lines.append(f"    a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines += ["  hosts:", "    h1: {}"]
    inv = tmp_path / "bomb.yml"
    inv.write_text("\n".join(lines) + "\n")
    started = time.process_time()
    with pytest.raises(InventoryError, match="aliases expand to more than"):
        load([str(inv)])
    assert time.process_time() - started < 10


def test_a_fifo_in_group_vars_is_refused_not_waited_on(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    h1: {}\n")
    (tmp_path / "group_vars").mkdir()
    os.mkfifo(tmp_path / "group_vars" / "all")
    with pytest.raises(InventoryError) as exc:
        load([str(tmp_path / "hosts.yml")])
    assert (
        str(exc.value)
        == f"{tmp_path}/group_vars/all: not a regular file (a FIFO, device or directory)"
    )


def _shape(node: Node) -> object:
    """A node tree as plain data: tag, position and value (children in order); a scalar's
    quoting style too (libyaml spells a plain scalar's style "" where PyYAML says None)."""
    where = (node.tag, node.start_mark.line, node.start_mark.column)
    if isinstance(node, ScalarNode):
        return (*where, node.value, node.style or None)
    if isinstance(node, MappingNode):
        return (*where, [(_shape(k), _shape(v)) for k, v in node.value])
    return (*where, [_shape(child) for child in node.value])


def test_libyaml_composes_the_same_nodes_as_the_python_parser() -> None:
    text = (
        "all:\n  vars:\n    port: 22\n    on: yes\n    when: 2026-12-05\n    é: 'ünï'\n"
        "    base: &b {a: [1, 2.5, null, ~], b: !unsafe '{{ x }}'}\n    again: *b\n"
        "  children:\n    web:\n      hosts:\n        h1: {ansible_host: 127.0.1.1}\n"
        "        h2:\n          tls_names:\n          - a.test\n          - |\n            text\n"
    )
    fast = yamlload._compose_fast(text)
    slow = yaml.compose(text, Loader=yamlload._Loader)  # noqa: S506 - a SafeLoader
    assert fast is not None and slow is not None
    assert _shape(fast) == _shape(slow)
    assert yamlload._compose_fast("a: [1\n") is None  # rejected: the Python parser reports it
    deep = "a: " + "[" * 150 + "]" * 150 + "\n"  # nests deeper than the fast path takes
    assert yamlload._compose_fast(deep) is None
    assert yamlload._compose_fast("a: " + "[" * 50 + "]" * 50 + "\n") is not None


def test_nesting_too_deep_for_the_python_parser_is_still_refused_in_one_line(
    tmp_path: Path,
) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  vars:\n    v: " + "[" * 600 + "]" * 600 + "\n")
    with pytest.raises(InventoryError, match="nesting too deep"):
        load([str(inv)])
