"""The fleet options on the command line: what is refused before anything runs, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  vars: {ansible_connection: local}\n"
        "  hosts:\n    a: {}\n    b: {worker_queue: 'eu west'}\n"
    )
    plan = tmp_path / "plan.yml"
    plan.write_text('- hosts: all\n  tasks:\n    - command: ["true"]\n')
    return str(plan), str(inv)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["run", *argv])
    return code, capsys.readouterr().err.splitlines()


def test_a_bad_worker_queue_is_refused_naming_the_host_before_the_broker_is_asked(
    files: tuple[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plan, inv = files
    code, err = run(
        capsys,
        plan,
        "-i",
        inv,
        "--executor",
        "celery",
        "--broker",
        "redis://:pw@127.0.0.1:1/0",  # nothing listens: never reached
        "--state-dir",
        str(tmp_path / "s"),
    )
    assert code == 2
    assert err == [
        "origin-agent: b: worker_queue must be a queue name (letters, digits, '_.:-'), "
        "got 'eu west'"
    ]


def test_an_unreachable_broker_is_exit_6_in_one_line_with_the_password_masked(
    files: tuple[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plan, inv = files
    Path(inv).write_text(Path(inv).read_text().replace("'eu west'", "eu"))
    code, err = run(
        capsys,
        plan,
        "-i",
        inv,
        "--executor",
        "celery",
        "--broker",
        "redis://:s3cret@127.0.0.1:1/0",
        "--state-dir",
        str(tmp_path / "s"),
    )
    assert code == 6
    assert len(err) == 1 and "broker redis://:***@127.0.0.1:1/0 unreachable" in err[0]
    assert "nothing was run" in err[0] and "s3cret" not in err[0]


def test_fleet_options_without_the_celery_executor_are_a_usage_error(
    files: tuple[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plan, inv = files
    code, err = run(capsys, plan, "-i", inv, "--resume", "abc", "--state-dir", str(tmp_path))
    assert code == 2
    assert err == ["origin-agent: --broker and --resume need --executor celery"]
