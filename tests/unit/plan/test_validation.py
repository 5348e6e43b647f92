"""Plan validation: every problem, with file:line:col, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import PlanError
from agent.inventory.model import Host
from agent.plan.load import load_yaml_text
from agent.plan.parse import PlanErrors, load_plan, parse_plan
from agent.plan.render import check_plan, scope_for

FIXTURES = Path(__file__).parents[2] / "fixtures" / "plans"


def errors_of(path: Path) -> list[str]:
    with pytest.raises(PlanErrors) as info:
        load_plan(str(path))
    return [str(e) for e in info.value.errors]


def test_bad_plan_reports_every_problem_with_positions() -> None:
    f = str(FIXTURES / "bad_keys.yml")
    errors = errors_of(FIXTURES / "bad_keys.yml")
    assert errors[0] == (
        f"{f}:4:3: unknown play key 'varz' (did you mean 'vars'?); accepted: name, hosts, vars, "
        "vars_files, become, serial, max_fail_percentage, any_errors_fatal, tasks, handlers"
    )
    assert any(
        e.startswith(f"{f}:7:7: unknown task key 'copyy' (did you mean 'copy'?)") for e in errors
    )
    assert any(
        e.startswith(f"{f}:6:7: a task needs exactly one module, found none") for e in errors
    )
    assert any(
        e.startswith(f"{f}:10:7: unknown task key 'regster' (did you mean 'register'?)")
        for e in errors
    )
    assert f"{f}:12:52: argument 'mode': expected an octal mode like '0644', got [1]" in errors
    assert any(
        e.startswith(
            f"{f}:14:28: unknown argument 'contnt' for module 'copy' "
            "(did you mean 'content'?); accepted: content, dest, mode, owner, "
            "secret, src"
        )
        for e in errors
    )
    assert any(
        e.startswith(
            f"{f}:17:15: notify names no handler: 'restart nginxx' (did you mean 'restart nginx'?)"
        )
        for e in errors
    )


def test_yaml_syntax_error_has_position() -> None:
    with pytest.raises(
        PlanError,
        match=r"^p.yml:4:1: YAML syntax error: found unexpected end "
        r"of stream; while scanning a quoted scalar at p.yml:3:13$",
    ):
        parse_plan(load_yaml_text("- hosts: all\n  tasks:\n    - name: 'x\n", "p.yml"), "p.yml")


def test_duplicate_key_names_both_places() -> None:
    with pytest.raises(
        PlanError,
        match=r"^p.yml:3:3: duplicate key 'hosts'; first given at "
        r"p.yml:2:3",
    ):
        load_yaml_text("- name: x\n  hosts: a\n  hosts: b\n", "p.yml")


@pytest.mark.parametrize(
    "text,message",
    [
        ("- hosts: all\n  serial: 0\n", "serial must be a positive number"),
        ("- hosts: all\n  serial: [1, 'x%']\n", "serial must be"),
        ("- hosts: all\n  max_fail_percentage: 120\n", "max_fail_percentage must be"),
        (
            "- hosts: all\n  tasks:\n    - command: echo\n      shell: echo\n",
            "exactly one module, found command, shell",
        ),
        ("- hosts: all\n  tasks:\n    - command: echo {{ x\n", "template syntax error"),
        (
            "- hosts: all\n  tasks:\n    - command: echo\n      register: 'a b'\n",
            "register must be",
        ),
        ("- tasks: []\n", "needs 'hosts'"),
        ("{}\n", "a plan must be a non-empty list of plays"),
        ("- hosts: all\n  tasks:\n    - command: echo\n      when: 'x =='\n", "template syntax"),
        (
            "- hosts: all\n  tasks:\n    - command: echo\n      listen: x\n",
            "p.yml:4:15: only a handler can listen",
        ),
        ("- hosts: all\n  handlers:\n    - meta: flush_handlers\n", "p.yml:3:7: meta is for tasks"),
        ("- hosts: all\n  tasks:\n    - meta: end_play\n", "argument 'action'"),
    ],
)
def test_static_problems(text: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_plan(load_yaml_text(text, "p.yml"), "p.yml")


def test_notify_may_name_handlers_and_listen_topics_and_handlers_may_notify() -> None:
    text = (
        "- hosts: all\n  tasks:\n    - command: echo\n      notify: [restart web, web]\n"
        "  handlers:\n    - name: reload nginx\n      command: echo\n"
        "      listen: [restart web]\n      notify: [later, webz]\n"
        "    - name: later\n      command: echo\n"
    )
    with pytest.raises(PlanErrors) as info:
        parse_plan(load_yaml_text(text, "p.yml"), "p.yml")
    errors = sorted(str(e).split(";")[0] for e in info.value.errors)
    assert errors == [
        "p.yml:4:15: notify names no handler: 'web'",
        "p.yml:9:15: notify names no handler: 'webz'",
    ]
    plan = parse_plan(
        load_yaml_text(text.replace(", web]", "]").replace(", webz", ""), "p.yml"), "p.yml"
    )
    handler = plan.plays[0].handlers[0]
    assert handler.triggers == {"reload nginx", "restart web"} and handler.notify == ("later",)


def _scopes(plan_hosts: list[Host], extra: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    return lambda play: [scope_for(h.name, h.vars, h.groups, play, extra or {}) for h in plan_hosts]


def test_undefined_variable_names_file_line_col_and_host() -> None:
    plan = load_plan(str(FIXTURES / "undefined.yml"))
    f = str(FIXTURES / "undefined.yml")
    hosts = [
        Host("web-1", {"site_name": "a", "greeting": "hi"}),
        Host("web-2", {"greeting": "x"}),
        Host("web-3", {"site_name": "c"}),
    ]
    with pytest.raises(PlanErrors) as info:
        check_plan(plan, _scopes(hosts))
    errors = [str(e) for e in info.value.errors]
    assert errors == [
        f"{f}:4:15: undefined variable 'site_name' for host web-2",
        f"{f}:9:18: undefined variable 'greeting' for host web-3",
    ]


def test_extra_vars_define_what_inventory_lacks() -> None:
    plan = load_plan(str(FIXTURES / "undefined.yml"))
    hosts = [Host("web-2", {})]
    check_plan(plan, _scopes(hosts, {"site_name": "s", "greeting": "g"}))


def test_argument_type_is_checked_per_host_after_rendering() -> None:
    text = (
        "- hosts: all\n  tasks:\n    - file:\n        path: /x\n        state: directory\n"
        "        mode: '{{ m }}'\n"
    )
    plan = parse_plan(load_yaml_text(text, "p.yml"), "p.yml")
    check_plan(plan, _scopes([Host("ok", {"m": "0755"})]))
    with pytest.raises(
        PlanErrors,
        match=r"^p.yml:6:15: argument 'mode': expected an octal "
        r"mode like '0644', got 'rwx' \(host bad\)",
    ):
        check_plan(plan, _scopes([Host("bad", {"m": "rwx"})]))


def test_good_fixture_plan_is_valid() -> None:
    plan = load_plan(str(FIXTURES / "good.yml"))
    assert plan.plays[0].serial == (1, "50%")
    assert plan.plays[0].fail_threshold == 0.0
    check_plan(plan, _scopes([Host("w1", {"base": "/srv"})]))
