"""The command line, in process."""

from __future__ import annotations

import pytest

from agent.cli import build_parser, main


def test_help_lists_the_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "lab" in out
    assert "Exit codes" in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_an_agent_error_prints_one_line_and_no_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    code = main(["lab", "--dir", "/nonexistent/origin-agent-lab", "status"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "no lab is up" in err and "Traceback" not in err


def test_every_command_has_help() -> None:
    parser = build_parser()
    text = parser.format_help()
    assert "origin-agent" in text
