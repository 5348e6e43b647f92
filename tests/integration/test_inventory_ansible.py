"""Our `inventory --list/--graph/--host` and host patterns against ansible-core's own tools.

ansible-core is a test dependency (installed in the project's virtualenv), so nothing here is
skipped: each fixture inventory is loaded by both and the outputs must be identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import main
from agent.inventory import load

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "inventory"
BIN = Path(sys.executable).parent

CASES: dict[str, list[str]] = {
    "yaml_nested": ["yaml_nested/hosts.yml"],
    "ini_basic": ["ini_basic/hosts.ini"],
    "multi_yaml_and_ini": ["multi/a.yml", "multi/b.ini"],
    "directory": ["dir_source/inv"],
    "precedence": ["precedence/hosts.yml"],
    "json": ["json_inv/hosts.json"],
}


def sources(case: str) -> list[str]:
    return [str(FIXTURES / s) for s in CASES[case]]


def i_args(case: str) -> list[str]:
    return [arg for s in sources(case) for arg in ("-i", s)]


@pytest.fixture(scope="module")
def ansible_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("ansible-home")
    env = dict(os.environ)
    env.update(
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_INVENTORY_UNPARSED_FAILED="1",
        ANSIBLE_CONFIG=str(home / "none.cfg"),
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )
    return env


def ansible(tool: str, args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(
        [str(BIN / tool), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def ours(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = main(args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.mark.parametrize("case", sorted(CASES))
def test_list_is_identical_to_ansible_inventory(
    case: str, ansible_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = ansible("ansible-inventory", [*i_args(case), "--list"], ansible_env)
    mine = ours(["inventory", *i_args(case), "--list"], capsys)
    assert json.loads(mine) == json.loads(theirs)
    assert mine == theirs  # same text too: key order, indentation, non-ASCII


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_is_identical_to_ansible_inventory(
    case: str, ansible_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = ansible("ansible-inventory", [*i_args(case), "--graph"], ansible_env)
    assert ours(["inventory", *i_args(case), "--graph"], capsys) == theirs


@pytest.mark.parametrize(
    ("case", "host"),
    [
        ("yaml_nested", "web03.example.com"),
        ("yaml_nested", "paris3"),
        ("ini_basic", "edge.example.com"),
        ("multi_yaml_and_ini", "m2"),
        ("precedence", "h1"),
    ],
)
def test_host_vars_are_identical_to_ansible_inventory(
    case: str, host: str, ansible_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = ansible("ansible-inventory", [*i_args(case), "--host", host], ansible_env)
    assert json.loads(ours(["inventory", *i_args(case), "--host", host], capsys)) == json.loads(
        theirs
    )


def list_hosts(output: str) -> list[str]:
    lines = [line.strip() for line in output.splitlines()]
    assert lines and lines[0].startswith("hosts (")
    return lines[1:]


@pytest.mark.parametrize(
    ("case", "pattern", "limit"),
    [
        ("yaml_nested", "all", None),
        ("yaml_nested", "eu", None),
        ("yaml_nested", "web:&eu:!eu_paris", None),
        ("yaml_nested", "web*,db", None),
        ("yaml_nested", "!web", None),
        ("yaml_nested", "eu[1:3]", None),
        ("yaml_nested", "~paris[13]", None),
        ("yaml_nested", "web", "eu:db"),
        ("ini_basic", "parents:!later", None),
        ("ini_basic", "*.example.com", None),
        ("multi_yaml_and_ini", "web:db", "m*"),
    ],
)
def test_pattern_selects_what_ansible_selects(
    case: str, pattern: str, limit: str | None, ansible_env: dict[str, str]
) -> None:
    args = [*i_args(case), pattern, "--list-hosts"]
    if limit is not None:
        args += ["--limit", limit]
    theirs = list_hosts(ansible("ansible", args, ansible_env))
    mine = [h.name for h in load(sources(case)).select(pattern, limit)]
    assert mine == theirs


def test_cli_subprocess_smoke(ansible_env: dict[str, str]) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "inventory", *i_args("ini_basic"), "--list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    theirs = ansible("ansible-inventory", [*i_args("ini_basic"), "--list"], ansible_env)
    assert proc.stdout == theirs


@pytest.mark.parametrize("limit", ["db", "eu:&web", "paris*"])
def test_list_with_limit_is_identical_to_ansible_inventory(
    limit: str, ansible_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*i_args("yaml_nested"), "--list", "--limit", limit]
    theirs = ansible("ansible-inventory", args, ansible_env)
    assert ours(["inventory", *args], capsys) == theirs
