"""The command line, in process."""

from __future__ import annotations

import argparse

import pytest

from agent.cli import COMMANDS, build_parser, main


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


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _every_parser() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser and every action's under it (``lab up``, ``ca init``...)."""
    found: dict[str, argparse.ArgumentParser] = {}
    for name, parser in _subparsers(build_parser()).items():
        found[name] = parser
        for action, inner in _subparsers(parser).items():
            found[f"{name} {action}"] = inner
    return found


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command_explains_it_and_every_option(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    parser = _every_parser()[command]
    assert parser.description and len(parser.description) > 40
    assert " ".join(parser.description.split()[:4]) in " ".join(out.split())
    for name, each in _every_parser().items():
        if name.split()[0] != command:
            continue
        for action in each._actions:
            if isinstance(action, argparse._SubParsersAction):  # each ACTION has its line
                assert all(choice.help for choice in action._choices_actions), name
                continue
            assert action.help and action.help != argparse.SUPPRESS, (
                f"{name}: {action.option_strings or action.dest} has no help"
            )


def test_an_option_shared_by_commands_means_the_same_in_each() -> None:
    """-i, -l, -C, -f, --state-dir, --timeout, --trust...: one definition (only whether -i is
    required, and a -l help naming what it narrows, may differ)."""
    seen: dict[str, tuple[str, tuple[object, ...]]] = {}
    shared = 0
    for name, parser in _every_parser().items():
        for action in parser._actions:
            if not action.option_strings or action.dest in ("help", "json", "dir"):
                continue
            shape = (
                tuple(action.option_strings),
                action.dest,
                action.type,
                action.default,
                action.metavar,
                type(action).__name__,
                action.help if action.dest != "limit" else "",
            )
            key = action.option_strings[-1]
            if key in seen:
                shared += 1
                assert seen[key][1] == shape, f"{key}: {seen[key][0]} and {name} differ"
            else:
                seen[key] = (name, shape)
    assert shared >= 30


def test_inventory_is_required_by_the_plan_runners_and_named_by_the_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in ("run", "rotate", "bootstrap"):
        with pytest.raises(SystemExit) as exc:
            main([command, *(["plan.yml"] if command == "run" else [])])
        assert exc.value.code == 2
        assert "-i/--inventory" in capsys.readouterr().err
    for command in ("status", "pins", "promote"):
        assert main([command, *(["--zone", "z"] if command == "promote" else [])]) == 2
        assert capsys.readouterr().err == (
            f"origin-agent: {command}: {command} needs an inventory; use -i FILE\n"
        )
