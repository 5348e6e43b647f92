from __future__ import annotations

import pytest

from agent.errors import InventoryError
from agent.inventory import Inventory, load
from agent.inventory.patterns import split_pattern

from .conftest import FIXTURES


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load([str(FIXTURES / "yaml_nested" / "hosts.yml")])


def names(inv: Inventory, pattern: str, limit: str | None = None) -> list[str]:
    return [h.name for h in inv.select(pattern, limit)]


ALL = [
    "lone.example.com",
    "web01.example.com",
    "web02.example.com",
    "web03.example.com",
    "web04.example.com",
    "web-a",
    "web-b",
    "web-c",
    "edge.example.com",
    "db1.example.com",
    "db2.example.com",
    "paris1",
    "paris3",
    "paris5",
]


@pytest.mark.parametrize("pattern", ["all", "*", "all:!nothing*"])
def test_all_and_star_select_every_host_in_inventory_order(inv: Inventory, pattern: str) -> None:
    assert names(inv, pattern) == ALL


def test_a_host_name_selects_that_host(inv: Inventory) -> None:
    assert names(inv, "db1.example.com") == ["db1.example.com"]


def test_a_group_includes_its_child_groups(inv: Inventory) -> None:
    assert names(inv, "eu") == [
        "web02.example.com",
        "web03.example.com",
        "db2.example.com",
        "paris1",
        "paris3",
        "paris5",
    ]


def test_glob_matches_group_and_host_names(inv: Inventory) -> None:
    assert names(inv, "web-*") == ["web-a", "web-b", "web-c"]
    assert names(inv, "eu_*") == ["paris1", "paris3", "paris5"]


@pytest.mark.parametrize("pattern", ["db:us", "db,us", "db, us"])
def test_union(inv: Inventory, pattern: str) -> None:
    assert names(inv, pattern) == ["db1.example.com", "db2.example.com", "web04.example.com"]


def test_intersection_and_exclusion_apply_after_unions(inv: Inventory) -> None:
    assert names(inv, "web:&eu:!eu_paris") == [
        "web02.example.com",
        "web03.example.com",
        "db2.example.com",
    ]
    assert names(inv, "!eu_paris:&eu:web") == names(inv, "web:&eu:!eu_paris")


def test_only_exclusions_start_from_all(inv: Inventory) -> None:
    assert names(inv, "!web") == ["lone.example.com", "db1.example.com"]


def test_limit_is_intersected(inv: Inventory) -> None:
    assert names(inv, "web", limit="eu") == names(inv, "web:&eu")
    assert names(inv, "all", limit="paris*,db1*") == [
        "db1.example.com",
        "paris1",
        "paris3",
        "paris5",
    ]


def test_subscripts_and_regex(inv: Inventory) -> None:
    assert names(inv, "eu[0]") == ["web02.example.com"]
    assert names(inv, "eu[-1]") == ["paris5"]
    assert names(inv, "eu[1:2]") == ["web03.example.com", "db2.example.com"]
    assert names(inv, "eu_paris[1:]") == ["paris3", "paris5"]
    assert names(inv, "~paris[35]") == ["paris3", "paris5"]


def test_unknown_plain_name_is_an_error_with_suggestion(inv: Inventory) -> None:
    with pytest.raises(
        InventoryError, match=r"no host or group named 'eu_pariss'.*did you mean 'eu_paris'"
    ):
        inv.select("eu_pariss")
    with pytest.raises(InventoryError, match="--limit"):
        inv.select("all", limit="nosuchgroup")


def test_glob_matching_nothing_is_empty_not_an_error(inv: Inventory) -> None:
    assert names(inv, "zzz*") == []


@pytest.mark.parametrize("pattern", ["", "  ", "web:&", "~[unclosed", "eu[99]"])
def test_malformed_patterns_raise_inventory_error(inv: Inventory, pattern: str) -> None:
    with pytest.raises(InventoryError):
        inv.select(pattern)


def test_split_keeps_ranges_and_ipv6_whole() -> None:
    assert split_pattern("web[1:3]:db") == ["web[1:3]", "db"]
    assert split_pattern("::1") == ["::1"]
    assert split_pattern("a:&b:!c") == ["a", "&b", "!c"]
