"""`origin-agent run` in-process (argument handling, exit codes, errors) plus one subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import build_parser, main
from agent.commands import rotate
from agent.commands.rotate import RotationSummary, rotation_vars
from agent.commands.run import PlanRun, bundled_vars, execute, parse_extra_vars
from agent.errors import InventoryError, UsageError
from agent.report.events import HostResult, HostUnreachable, ListReporter, RunFinished, TaskDone

ROOT = Path(__file__).parents[3]


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that changes things takes the run lock in the state directory: a private one."""
    monkeypatch.setenv("ORIGIN_AGENT_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    box1:\n      connection: local\n"
        f"      out: {tmp_path}/box1\n    box2:\n      connection: local\n"
        f"      out: {tmp_path}/box2\n"
    )
    plan = tmp_path / "plan.yml"
    plan.write_text(
        "- hosts: all\n  tasks:\n"
        "    - file: {path: '{{ out }}', state: directory}\n"
        "    - copy: {dest: '{{ out }}/f', content: '{{ msg }}'}\n"
    )
    return plan, inv


def test_run_converges_and_reruns_clean(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan, inv = files
    assert main(["run", str(plan), "-i", str(inv), "-e", "msg=hi there"]) == 0
    assert (tmp_path / "box2" / "f").read_text() == "hi there"
    capsys.readouterr()
    assert main(["run", str(plan), "-i", str(inv), "-e", "msg=hi there", "--json"]) == 0
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert [h["changed"] for h in last["hosts"]] == [0, 0]


def test_limit_and_check(files: tuple[Path, Path], tmp_path: Path) -> None:
    plan, inv = files
    assert (
        main(["run", str(plan), "-i", str(inv), "-e", "msg=x", "--limit", "box1", "--check"]) == 0
    )
    assert not (tmp_path / "box1").exists()
    assert main(["run", str(plan), "-i", str(inv), "-e", "msg=x", "--limit", "box1"]) == 0
    assert (tmp_path / "box1").exists() and not (tmp_path / "box2").exists()


def test_undefined_variable_is_exit_1_with_positions(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    plan, inv = files
    assert main(["run", str(plan), "-i", str(inv)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"origin-agent: {plan}:4:44: undefined variable 'msg' for host box1",
        f"origin-agent: {plan}:4:44: undefined variable 'msg' for host box2",
        "origin-agent: 2 problems; nothing was run",
    ]


def test_usage_errors_exit_2(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    plan, inv = files
    assert main(["run", str(plan), "-i", str(inv), "-e", "novalue"]) == 2
    for argv in (["run", str(plan)], ["run", str(plan), "-i", str(inv), "--forks", "0"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2


def test_extra_vars_forms(tmp_path: Path) -> None:
    f = tmp_path / "e.yml"
    f.write_text("a: [1, 2]\nb: from-file\n")
    assert parse_extra_vars(["b=1 c='x y'", f"@{f}", '{"d": true}']) == {
        "a": [1, 2],
        "b": "from-file",
        "c": "x y",
        "d": True,
    }
    with pytest.raises(UsageError):
        parse_extra_vars(["1bad=x"])


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "3 some host was" in out and "--accept-new-host-keys" in out


def test_subprocess_smoke(files: tuple[Path, Path], tmp_path: Path) -> None:
    plan, inv = files
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "run", str(plan), "-i", str(inv), "-e", "msg=smoke"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "RECAP" in proc.stdout and "box2  ok=0 changed=2" in proc.stdout


def test_execute_hands_every_event_to_the_observer_too(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan, inv = files
    observer = ListReporter()
    request = PlanRun(str(plan), (str(inv),), {"msg": "seen"}, limit="box1", json=True)
    assert execute(request, observer) == 0
    kinds = [type(e).__name__ for e in observer.events]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert sum(k == "TaskDone" for k in kinds) == 2
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(observer.events)  # the reporter saw the same events
    assert (tmp_path / "box1" / "f").read_text() == "seen"


def test_bundled_plans_take_the_commands_typed_vars_then_the_users_e() -> None:
    typed = rotation_vars(renew_before=10, force=True, no_revoke=True)
    assert typed == {"renew_before_days": 10, "force": True, "revoke_replaced": False}
    assert rotation_vars(renew_before=30, force=False, no_revoke=False) == {"renew_before_days": 30}
    merged = bundled_vars("rotate", typed, "eu", parse_extra_vars(["force=false"]))
    assert merged == {
        "renew_before_days": 10,
        "force": "false",
        "revoke_replaced": False,
        "target": "eu",
    }
    for given in (["target=web-1"], ['{"target": "web-1"}']):
        with pytest.raises(UsageError, match="^rotate: give hosts as arguments"):
            bundled_vars("rotate", typed, "all", parse_extra_vars(given))


def test_rotate_leaves_its_arguments_as_parsed(files: tuple[Path, Path], tmp_path: Path) -> None:
    _, inv = files
    args = build_parser("rotate").parse_args(
        ["rotate", "-i", str(inv), "no-such-host", "--force", "--state-dir", str(tmp_path)]
    )
    before = dict(vars(args))
    with pytest.raises(InventoryError, match="no host or group named 'no-such-host'"):
        rotate.run(args)
    assert vars(args) == before


def test_rotation_summary_counts_each_host_once_by_its_last_word() -> None:
    summary = RotationSummary()
    for host, status in (("a", "changed"), ("b", "ok"), ("c", "failed")):
        summary.emit(TaskDone(host, "p", "t", "tls_origin", status))  # type: ignore[arg-type]
    summary.emit(TaskDone("b", "p", "t", "command", "changed"))  # not the rotation task
    summary.emit(HostUnreachable("d", "timed out"))
    finished = (HostResult("a"), HostResult("e", not_run=True), HostResult("c", failed=1))
    summary.emit(RunFinished(finished, exit_code=1, elapsed=1.0))
    assert summary.line() == "rotation: 1 rotated, 1 unchanged, 1 failed, 1 unreachable, 1 not run"


UNREACHABLE_ORIGIN = (
    "all:\n  hosts:\n    web1:\n      ansible_host: 127.77.0.1\n      ansible_port: 1\n"
    "      tls_names: [a.example.com]\n      issuer: {backend: selfsigned}\n"
)


@pytest.mark.parametrize("check", [True, False])
def test_rotate_with_an_unreachable_canary_exits_3_and_a_check_says_would(
    tmp_path: Path, check: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text(UNREACHABLE_ORIGIN)
    code = main(["rotate", "-i", str(inv), *(["--check"] if check else [])])
    out = capsys.readouterr().out
    assert code == 3
    summary = out.strip().splitlines()[-1]
    if check:
        assert summary.startswith("rotation (check mode, nothing changed): 0 would rotate,")
        assert " rotated" not in summary
    else:
        assert summary.startswith("rotation: 0 rotated,")
    assert "1 unreachable" in summary and "0 failed" in summary


def test_a_run_stopped_by_unreachable_hosts_alone_exits_3_and_one_with_a_failure_exits_1() -> None:
    from agent.report.events import exit_code_for

    down, broken = HostResult("a", unreachable=True), HostResult("b", failed=1)
    assert exit_code_for([down], aborted=True) == 3
    assert exit_code_for([down, broken], aborted=True) == 1
    assert exit_code_for([HostResult("c")], aborted=True) == 1
    assert exit_code_for([HostResult("c")], aborted=False) == 0


def test_rotate_refused_before_any_host_ran_prints_no_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text(UNREACHABLE_ORIGIN + "      web_server: lighttpd\n")
    code = main(["rotate", "-i", str(inv), "--check"])
    captured = capsys.readouterr()
    assert code != 0
    assert "lighttpd" in captured.err and "\n" not in captured.err.strip()
    assert "rotation" not in captured.out + captured.err  # no "0 would rotate" for a refusal
