"""Every input of the hostile-input report, run through the CLI in this process: one line, the
right exit code, no traceback, no planted secret and no raw control character in what is
printed, no command started and no file written (tests/hostile.py holds the corpus)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hostile import RAW_CONTROLS, Case, cases, planted_in, run_cli, write_tree

pytestmark = pytest.mark.hostile


# Inputs still handled wrongly, with the item of issue 14 that fixes them (strict: an xfail
# that passes fails the run, so a fixed case must leave this list).
PENDING = {}


def _tree(root: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            found[str(path)] = b"<not a file>"
        else:
            found[str(path)] = path.read_bytes()
    return found


def _prepare(case: Case, work: Path) -> None:
    write_tree(work, case.files)
    if case.special:
        group_vars = work / "inv" / "group_vars"
        group_vars.mkdir(parents=True)
        if case.special == "fifo":
            os.mkfifo(group_vars / "all")
        else:
            (group_vars / "all").symlink_to(group_vars / "all")


def _params() -> list[object]:
    return [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.xfail(reason=PENDING[case.id], strict=True)]
            if case.id in PENDING
            else [],
        )
        for case in cases()
    ]


@pytest.mark.parametrize("case", _params())
def test_hostile_input_is_one_line_with_the_right_exit_code_and_nothing_runs(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "w"
    work.mkdir()
    _prepare(case, work)
    monkeypatch.chdir(work)
    state = tmp_path / "state"
    env = {
        "HOME": str(tmp_path / "home"),
        "XDG_STATE_HOME": str(state),
        "ORIGIN_AGENT_LOG_DIR": str(tmp_path),
        **case.env,
    }
    before = _tree(work)
    outcome = run_cli([a.replace("{d}", str(work)) for a in case.argv], env)
    printed = outcome.out + outcome.err
    assert "Traceback" not in printed and "internal error" not in printed, printed[-2000:]
    assert outcome.code == case.code, printed[-2000:]
    if case.code == 2 and outcome.err.startswith("usage:"):
        assert "error:" in outcome.lines[-1]  # argparse: the usage, then one line
    elif case.one_line:
        assert len(outcome.lines) == 1, outcome.err
    if case.says:
        assert case.says in outcome.lines[-1]
    assert not planted_in(printed)
    assert not RAW_CONTROLS & set(printed), repr(printed[-500:])
    assert outcome.spawned == []
    assert _tree(work) == before
    made = [p for p in outcome.written if os.path.lexists(p)]  # an attempt that failed is no write
    assert [p for p in made if not p.startswith((str(state), str(work)))] == []
