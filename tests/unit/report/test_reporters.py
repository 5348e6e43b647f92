"""Human and JSON-lines output: escaping, no colour off a tty, recap, no secrets."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from agent.inventory.model import Host
from agent.plan.load import load_yaml_text
from agent.plan.parse import parse_plan
from agent.report.events import (
    HostResult,
    RunFinished,
    RunStarted,
    TaskDone,
    exit_code_for,
)
from agent.report.human import HumanReporter
from agent.report.jsonl import JsonReporter
from agent.runner.engine import Runner, RunOptions
from agent.transport.local import LocalConnection


def human(tty: bool = False) -> tuple[HumanReporter, io.StringIO]:
    out = io.StringIO()
    console = Console(
        file=out,
        force_terminal=tty,
        width=200,
        highlight=False,
        color_system="standard" if tty else None,
    )
    return HumanReporter(console), out


def test_host_supplied_text_is_neither_markup_nor_terminal_control() -> None:
    reporter, out = human()
    reporter.emit(
        TaskDone(
            host="web-1",
            play="p",
            task="t",
            module="command",
            status="failed",
            msg="[bold red]boom[/] \x1b[2J\x1b]0;title\x07",
        )
    )
    text = out.getvalue()
    assert "[bold red]boom[/]" in text
    assert "\x1b" not in text and "\x07" not in text


def test_no_colour_when_not_a_terminal_and_colour_on_one() -> None:
    plain, out = human(tty=False)
    plain.emit(TaskDone(host="h", play="p", task="t", module="m", status="changed"))
    assert "\x1b[" not in out.getvalue()
    coloured, out2 = human(tty=True)
    coloured.emit(TaskDone(host="h", play="p", task="t", module="m", status="changed"))
    assert "\x1b[" in out2.getvalue()


def test_check_mode_lists_changes_and_recap_per_host() -> None:
    reporter, out = human()
    reporter.emit(RunStarted(plan="p.yml", hosts=2, forks=20, check=True))
    reporter.emit(
        TaskDone(
            host="h1",
            play="p",
            task="write",
            module="copy",
            status="changed",
            changes=("write /etc/a (3 bytes) mode=0644",),
            check=True,
        )
    )
    hosts = (
        HostResult("h1", ok=1, changed=1),
        HostResult("h2", unreachable=True, error="h2: refused"),
    )
    reporter.emit(RunFinished(hosts=hosts, exit_code=exit_code_for(hosts, False), elapsed=1.0))
    text = out.getvalue()
    assert "would change: h1 | write" in text
    assert "    - write /etc/a (3 bytes) mode=0644" in text
    assert "h1  ok=1 changed=1 failed=0" in text
    assert "h2  ok=0 changed=0 failed=0 skipped=0 ignored=0 unreachable=1  h2: refused" in text
    assert "exit 3" in text


def test_exit_codes() -> None:
    assert exit_code_for([HostResult("a", ok=1)], False) == 0
    assert exit_code_for([HostResult("a", unreachable=True)], False) == 3
    assert exit_code_for([HostResult("a", unreachable=True), HostResult("b", failed=1)], False) == 1
    assert exit_code_for([HostResult("a", ok=1)], True) == 1


def test_json_lines_carry_every_event_and_never_a_secret(tmp_path: Path) -> None:
    text = f"""\
- hosts: all
  tasks:
    - copy: {{dest: "{tmp_path}/key.pem", content: "{{{{ key }}}}", mode: "0600", secret: true}}
    - copy: {{dest: "{tmp_path}/plain", content: "hello"}}
"""
    plan = parse_plan(load_yaml_text(text, "p.yml"), "p.yml")
    out = io.StringIO()
    hosts = [Host("h1", {"key": "-----BEGIN PRIVATE KEY----- SUPERSECRET"})]
    Runner(
        plan,
        lambda p: hosts,
        lambda h: LocalConnection(h.name),
        JsonReporter(out),
        RunOptions(diff=True),
    ).run()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "run_started",
        "play_started",
        "batch_started",
        "task_done",
        "task_done",
        "run_finished",
    ]
    assert "SUPERSECRET" not in out.getvalue()
    assert lines[3]["changes"] == [f"write {tmp_path}/key.pem (secret file) mode=0600"]
    assert "secret content not shown" in lines[3]["diff"]
    assert "+hello" in lines[4]["diff"]
    assert lines[-1]["exit_code"] == 0 and lines[-1]["hosts"][0]["changed"] == 2
    assert (tmp_path / "key.pem").read_text().endswith("SUPERSECRET")


def test_big_fleet_on_a_tty_shows_progress_instead_of_ok_lines() -> None:
    reporter, out = human(tty=True)
    reporter.emit(RunStarted(plan="p.yml", hosts=50, forks=20))
    for i in range(50):
        reporter.emit(TaskDone(host=f"web-{i}", play="p", task="t", module="m", status="ok"))
    reporter.emit(TaskDone(host="web-7", play="p", task="t2", module="m", status="changed"))
    reporter.emit(RunFinished(hosts=(HostResult("web-7", changed=1),), exit_code=0, elapsed=0.1))
    text = out.getvalue()
    assert "ok=50" in text  # the live progress line
    assert "web-3 | t" not in text  # no per-host ok lines
    assert "web-7 | t2" in text
    assert reporter.live is None


HOSTILE_TEXT = ["a\r\nFAKE: ok", "b\u202ec", "d\x9b2Je", "f\x1b[31mg", "h\x85i", "j\u2066k"]


def test_every_value_printed_is_one_line_without_controls_or_bidi_overrides() -> None:
    from agent.report.events import HostUnreachable

    reporter, out = human()
    for text in HOSTILE_TEXT:
        reporter.emit(
            TaskDone(host=text, play="p", task=text, module="m", status="failed", msg=text)
        )
        reporter.emit(HostUnreachable(text, text))
    reporter.emit(
        RunFinished(tuple(HostResult(t, failed=1, error=t) for t in HOSTILE_TEXT), 1, 1.0)
    )
    printed = out.getvalue()
    raw = {"\r", "\x1b", "\x9b", "\x85", "\u202e", "\u2066"}
    assert not raw & set(printed)
    assert not any(line.startswith("FAKE") for line in printed.splitlines())
