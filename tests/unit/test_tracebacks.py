"""Every input that used to end in a traceback is one line naming the input, with the right
exit code (the causes listed in the hostile-input report, T1-T13)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import paramiko
import pytest

from agent.cli import main
from agent.errors import HostKeyError, InventoryError, PlanError, UsageError
from agent.inventory import ConnectionSpec, load
from agent.jobs.targets import write_output_file
from agent.plan.load import load_yaml_text
from agent.transport.ssh_connect import open_client

pytestmark = pytest.mark.hostile

BIG = "0x" + "f" * 5000


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text("all:\n  hosts:\n    web1: {ansible_host: 127.0.0.1}\n")
    return path


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("value", ["nan", "inf", "1e308", "0", "-1", "abc"])
@pytest.mark.parametrize("command", ["status", "pins"])
def test_timeouts_that_are_not_a_number_of_seconds_are_usage_errors(
    inv: Path, command: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = usage_error([command, "-i", str(inv), "--timeout", value], capsys)
    assert "argument --timeout:" in line and "is not a number of seconds" in line


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["rotate", "--renew-before", "1000000000000"], "argument --renew-before:"),
        (["rotate", "--forks", "0"], "argument -f/--forks:"),
        (["status", "--forks", "100000"], "argument -f/--forks:"),
        (["status", "--fail-within", "-5"], "argument --fail-within:"),
        (["status", "--fail-within", "9" * 5000], "argument --fail-within:"),
    ],
)
def test_numbers_out_of_range_are_usage_errors(
    inv: Path, argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert said in usage_error([*argv, "-i", str(inv)], capsys)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--days", "1000000000"], "argument --days:"),
        (["--name", "n" * 300], "argument --name:"),
        (["--name", "evil\u202ename"], "argument --name:"),
    ],
)
def test_ca_init_refuses_bad_values_before_creating_anything(
    tmp_path: Path, args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "ca"
    assert said in usage_error(["ca", "init", str(target), *args], capsys)
    assert not target.exists()


@pytest.mark.parametrize("name", ["", "x" * 300, "a\nb"])
def test_ca_init_refuses_an_empty_long_or_multi_line_directory(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "argument DIR:" in usage_error(["ca", "init", name], capsys)


def test_ca_init_where_a_directory_cannot_be_made_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["ca", "init", str(blocker / "ca")])
    err = capsys.readouterr().err
    assert code in (1, 2) and err.count("\n") == 1 and "Traceback" not in err


def test_a_trust_file_that_is_not_pem_is_a_usage_error(
    inv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trust = tmp_path / "hostname"
    trust.write_text("not a certificate\n")
    code = main(["status", "-i", str(inv), "--trust", str(trust)])
    err = capsys.readouterr().err
    assert (
        code == 2
        and err
        == f"origin-agent: --trust: {trust} holds no PEM certificate; give a CA bundle in PEM\n"
    )


@pytest.mark.parametrize("where", ["missing/r.html", "."])
def test_an_html_report_path_that_cannot_be_written_is_refused_before_probing(
    inv: Path, tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["status", "-i", str(inv), "--html", str(tmp_path / where)])
    out = capsys.readouterr()
    assert code == 2 and out.out == "" and out.err.startswith("origin-agent: --html: ")


def test_writing_the_html_report_to_a_full_disk_is_one_line() -> None:
    with pytest.raises(UsageError, match="--html: cannot write /dev/full: No space left"):
        write_output_file(Path("/dev/full"), "x" * 100_000, "--html")


def test_a_5000_digit_integer_in_an_inventory_is_one_line(tmp_path: Path) -> None:
    yml = tmp_path / "big.yml"
    yml.write_text(f"all:\n  hosts:\n    h1:\n      big: {BIG}\n")
    with pytest.raises(InventoryError, match="integer too large"):
        load([str(yml)])
    ini = tmp_path / "big.ini"
    ini.write_text(f"h1 big={BIG}\n")
    assert load([str(ini)]).hosts["h1"].vars["big"] == BIG  # kept as text


def test_a_5000_digit_integer_in_a_plan_or_extra_vars_is_one_line() -> None:
    with pytest.raises(PlanError, match="e.yml:1:6: integer too large"):
        load_yaml_text(f"big: {BIG}\n", "e.yml")


@pytest.mark.parametrize("content", [None, b"\xff\xfe garbage \x80\n"])
def test_a_known_hosts_that_is_a_directory_or_not_text_is_one_line(
    tmp_path: Path, content: bytes | None
) -> None:
    known = tmp_path / "known_hosts"
    if content is None:
        known.mkdir()
    else:
        known.write_bytes(content)
    spec = ConnectionSpec(name="web1", address="127.0.0.1", port=9, known_hosts=str(known))
    with pytest.raises(HostKeyError) as exc:
        open_client(spec, accept_new_host_keys=False, config=paramiko.SSHConfig())
    assert str(exc.value).startswith(f"web1: cannot read known_hosts {known}: ")


class _BuggyModule:
    """A module with a bug (registered for this test only): planning divides by zero."""

    @staticmethod
    def load() -> type:
        from agent.modules.base import Module

        class Buggy(Module):
            name = "buggy"

            def plan(self, params: Any, facts: Any, ctx: Any) -> list[Any]:
                return [1 // 0]

        return Buggy


def test_a_module_bug_is_one_line_and_its_traceback_is_only_logged_at_debug(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent.modules import registry

    monkeypatch.setitem(registry.REGISTRY, "buggy", _BuggyModule.load)
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    loc:\n      ansible_connection: local\n")
    plan = tmp_path / "plan.yml"
    plan.write_text("- hosts: all\n  tasks:\n    - buggy: {}\n")
    caplog.set_level(logging.DEBUG)
    code = main(["run", str(plan), "-i", str(inv), "--check"])
    out = capsys.readouterr().out
    assert code == 1
    assert "internal error in module buggy: ZeroDivisionError" in out
    loud = [r for r in caplog.records if r.exc_info and r.levelno > logging.DEBUG]
    assert loud == []


def test_rotate_in_check_mode_says_would_rotate() -> None:
    from agent.commands.rotate import RotationSummary
    from agent.report.events import TaskDone

    summary = RotationSummary()
    summary.emit(TaskDone(host="h1", play="p", task="t", module="tls_origin", status="changed"))
    assert summary.line(check=True) == (
        "rotation (check mode, nothing changed): 1 would rotate, 0 unchanged, 0 failed, "
        "0 unreachable, 0 not run"
    )
    assert summary.line().startswith("rotation: 1 rotated, ")
