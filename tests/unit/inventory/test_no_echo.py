"""A file given by mistake as an inventory or as ``-e @file`` (``/etc/shadow``) is reported by
position, never by content: its lines would otherwise print password hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main

pytestmark = pytest.mark.hostile

HASH = "$6$Zq8sK2vRounds$ThIsIsAPasswordHashOfSomeLength0123456789abcdef"
SHADOW = f"root:{HASH}:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\n"


@pytest.mark.parametrize("name", ["shadow", "shadow.ini", "shadow.yml"])
def test_an_inventory_that_is_not_one_is_reported_without_its_lines(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_text(SHADOW)
    code = main(["inventory", "-i", str(path), "--list"])
    err = capsys.readouterr().err
    assert code == 1 and f"{path}:" in err
    assert "ThIsIsAPasswordHash" not in err


def test_extra_vars_from_a_file_that_is_not_vars_are_reported_without_its_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shadow"
    path.write_text(SHADOW)
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    h1: {connection: local}\n")
    plan = tmp_path / "plan.yml"
    plan.write_text("- hosts: all\n  tasks:\n    - command: {cmd: 'true'}\n")
    code = main(["run", str(plan), "-i", str(inv), "-e", f"@{path}", "--check"])
    err = capsys.readouterr().err
    assert code != 0 and str(path) in err
    assert "ThIsIsAPasswordHash" not in err and "root:" not in err and "20228" not in err
