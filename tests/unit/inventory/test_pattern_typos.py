"""A typo in a host pattern or --limit never widens the selection, and ~regex time is bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.cli import main
from agent.errors import InventoryError
from agent.inventory import Host, Inventory
from agent.inventory.model import Group
from agent.inventory.patterns import PatternError, evaluate
from agent.inventory.safe_regex import RegexError, compile_bounded, match_all

pytestmark = pytest.mark.hostile


def fleet(*names: str) -> Inventory:
    hosts = {n: Host(name=n, vars={}, groups=("all",)) for n in names}
    return Inventory(hosts=hosts, groups={"all": Group(name="all", hosts=tuple(names))})


INV = fleet("web1", "db1", "db2", "a" * 40 + "X")


@pytest.mark.parametrize(
    "pattern", ["[", "]", ":", ",", ":::", "[]", "web]", "web[", "a[]b", " , , "]
)
def test_a_pattern_that_does_not_parse_is_a_usage_error_not_the_whole_fleet(pattern: str) -> None:
    with pytest.raises(PatternError) as exc:
        evaluate(INV, pattern, what="--limit")
    assert exc.value.exit_code == 2
    assert str(exc.value).startswith("--limit ") and "\n" not in str(exc.value)


@pytest.mark.parametrize("pattern", ["[", "]", ":", ",", ":::", "[]"])
def test_limit_typos_select_nothing_through_select(pattern: str) -> None:
    with pytest.raises(PatternError):
        INV.select("all", limit=pattern)


@pytest.mark.parametrize("limit", ["nomatch*", "!web1:!db1:!db2:!a*", "~zzz"])
def test_a_limit_that_matches_no_host_is_an_error(limit: str) -> None:
    with pytest.raises(InventoryError, match="matches no host"):
        INV.select("all", limit=limit)


def test_ansible_patterns_still_work() -> None:
    assert [h.name for h in INV.select("all", limit="db*:!db2")] == ["db1"]
    assert [h.name for h in INV.select("web1,db1,")] == ["web1", "db1"]
    assert [h.name for h in INV.select("all", limit="db*[0:1]")] == ["db1", "db2"]
    assert [h.name for h in INV.select("~(web|db)[0-9]+")] == ["web1", "db1", "db2"]


@pytest.mark.parametrize(
    "expr", ["(a+)+$", "(a*)*b", "(a|aa)+$", "(a?a?)+$", "(\\w+\\s?)+$", "(.)\\1", "(?=a)a"]
)
def test_a_regex_of_a_backtracking_shape_is_refused_at_once(expr: str) -> None:
    started = time.process_time()
    with pytest.raises(PatternError) as exc:
        evaluate(INV, "~" + expr, what="--limit")
    assert time.process_time() - started < 1
    assert exc.value.exit_code == 2 and "bad expression" in str(exc.value)


@pytest.mark.parametrize("expr", ["a*b*c*d*", "x" * 201])
def test_a_regex_with_too_many_quantifiers_or_characters_is_refused(expr: str) -> None:
    with pytest.raises(RegexError):
        compile_bounded(expr)


def test_regex_matching_stops_when_its_time_budget_is_spent() -> None:
    compiled = compile_bounded(".*.*.*Y")  # cubic: slow on long names, not refused by shape
    names = ["a" * 250] * 100_000
    started = time.process_time()
    with pytest.raises(RegexError, match="took more than"):
        match_all(compiled, names, budget=0.05)
    assert time.process_time() - started < 1


def test_rotate_with_a_stray_bracket_exits_2_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    web1: {connection: local}\n    db1: {connection: local}\n")
    code = main(["rotate", "-i", str(inv), "--check", "]"])
    out = capsys.readouterr()
    assert code == 2
    assert out.err == "origin-agent: host pattern ']': unbalanced ']'\n"
    assert "RUN" not in out.out


def test_run_whose_plays_select_no_host_says_so_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    web1: {connection: local}\n")
    plan = tmp_path / "plan.yml"
    plan.write_text("- hosts: 'nomatch*'\n  tasks:\n    - command: {cmd: 'true'}\n")
    code = main(["run", str(plan), "-i", str(inv), "--check"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "plan.yml:1:3: play [nomatch*]:" in err
    assert "hosts pattern 'nomatch*' matches no host; nothing was run" in err


@pytest.mark.parametrize(
    "pattern", ["all[0:10^23]", "all[1:x]", "web[" + "9" * 12 + "]", "all[:-]"]
)
def test_a_subscript_that_is_not_numbers_is_a_usage_error(pattern: str) -> None:
    with pytest.raises(PatternError) as err:
        evaluate(INV, pattern)
    assert "is not a subscript" in str(err.value) and "\n" not in str(err.value)


def test_a_glob_class_is_still_a_glob() -> None:
    assert evaluate(INV, "web[0-9]") == ["web1"]
