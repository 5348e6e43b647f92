"""Whatever the text of an inventory, loading it raises InventoryError or nothing else."""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from agent.errors import InventoryError
from agent.inventory import connection_spec, load
from agent.inventory.export import graph, list_json

pytestmark = pytest.mark.hostile

FRAGMENTS = [
    "all:",
    "  hosts:",
    "    h1:",
    "    'h[1:3]':",
    "    h[a:c]:",
    "    'x[3:1]':",
    "  children:",
    "    web:",
    "      hosts:",
    "        w1: {port: 22}",
    "  vars:",
    "    a: 1",
    "    b: &x [1, *x]",
    "    c: !vault x",
    "    d: !!binary aGk=",
    "- a",
    "? [a]",
    ": b",
    "[web]",
    "[web:vars]",
    "[web:children]",
    "[eu:children]",
    "[eu]",
    "web",
    "eu",
    "h1 a=1 b='x y'",
    "h2:99999",
    "w[01:3]",
    "k = {'a': (1,",
    "x=[1,2]",
    "'unclosed",
    "---",
    "[bad section]",
    "[a:weird]",
    "ansible_port=abc",
    "ansible_host=10.0.0.1 host=10.0.0.2",
    "h3 ansible_become=maybe",
    "    ansible_group_priority: x",
    "&a [*a]",
    "<<: *nope",
    "\t",
    "web: [1, 2]",
    "plugin: x",
    "x={(1, 2): 3, 4: 5}",
    "    d: 2020-13-45",
    "    i: 1" + "0" * 5000,
]

texts = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("\n".join),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)), max_size=15).map(
        "\n".join
    ),
)


def check(name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            inv = load([path])
        except InventoryError as err:
            assert str(err)
            event("inventory error")
            return
        event("loaded")
        list_json(inv)
        graph(inv)
        for host in inv.hosts.values():
            try:
                connection_spec(host)
            except InventoryError:
                pass
        for pattern in ("all", "web:&eu", "!web", "h*", "web[0]"):
            try:
                inv.select(pattern)
            except InventoryError:
                pass


@settings(max_examples=300, deadline=None)
@given(text=texts, name=st.sampled_from(["inv.yml", "inv.ini", "hosts", "inv.json"]))
def test_any_text_loads_or_raises_inventory_error(text: str, name: str) -> None:
    check(name, text.encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200), name=st.sampled_from(["inv.yml", "hosts"]))
def test_any_bytes_load_or_raise_inventory_error(data: bytes, name: str) -> None:
    check(name, data)
