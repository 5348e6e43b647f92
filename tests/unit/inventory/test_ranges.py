from __future__ import annotations

import pytest

from agent.inventory.ranges import RangeError, expand, expand_entry, split_port


def test_numeric_range_is_inclusive() -> None:
    assert expand("web[1:3].example.com") == [
        "web1.example.com",
        "web2.example.com",
        "web3.example.com",
    ]


def test_leading_zero_pads_to_the_same_width() -> None:
    assert expand("web[08:11]") == ["web08", "web09", "web10", "web11"]


def test_web01_to_web20_gives_twenty_names() -> None:
    names = expand("web[01:20].example.com")
    assert len(names) == 20 and names[0] == "web01.example.com" and names[-1] == "web20.example.com"


def test_alphabetic_range() -> None:
    assert expand("db-[a:c]") == ["db-a", "db-b", "db-c"]


def test_step_and_empty_start() -> None:
    assert expand("x[0:6:3]") == ["x0", "x3", "x6"]
    assert expand("x[:2]") == ["x0", "x1", "x2"]


def test_several_ranges_multiply_in_order() -> None:
    assert expand("r[1:2]-[a:b]") == ["r1-a", "r1-b", "r2-a", "r2-b"]


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("web[01:100]", "same width"),
        ("web[5:1]", "start after end"),
        ("web[1:3:0]", "positive step"),
        ("web[1:3", "unclosed"),
        ("web1]", "unmatched"),
        ("web[1-3]", "must be [start:end]"),
        ("web[a:3]", "numbers or single letters"),
        ("web[1:]", "no end"),
        ("web[0:999999999]", "more than"),
    ],
)
def test_bad_ranges_say_why(pattern: str, why: str) -> None:
    with pytest.raises(RangeError, match=why.replace("[", r"\[").replace("]", r"\]")):
        expand(pattern)


def test_port_is_split_from_names_ipv4_and_bracketed_ipv6() -> None:
    assert split_port("web1:2222") == ("web1", 2222)
    assert split_port("10.0.0.1:23") == ("10.0.0.1", 23)
    assert split_port("[::1]:24") == ("::1", 24)
    assert split_port("::1") == ("::1", None)
    assert split_port("web[1:3]") == ("web[1:3]", None)
    assert expand_entry("web[1:2]:2200") == (["web1", "web2"], 2200)


def test_bad_ports_are_rejected() -> None:
    with pytest.raises(RangeError, match="1-65535"):
        split_port("web1:70000")
    with pytest.raises(RangeError, match="ends with ':'"):
        split_port("web1:")
