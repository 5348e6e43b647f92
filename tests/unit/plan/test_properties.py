"""Properties: arbitrary plans and variable values fail only with our errors, and no value
can change the argv a command task runs."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.errors import AgentError, PlanError
from agent.inventory.model import Host
from agent.modules.apply import ConnectionApplier
from agent.modules.base import RunCommand
from agent.plan.load import load_yaml_text
from agent.plan.parse import parse_plan
from agent.plan.render import check_plan, render_args, scope_for
from agent.plan.vars import is_template
from agent.transport.local import LocalConnection

pytestmark = pytest.mark.hostile

KEYS = [
    "name",
    "hosts",
    "vars",
    "tasks",
    "handlers",
    "serial",
    "when",
    "loop",
    "notify",
    "register",
    "command",
    "shell",
    "copy",
    "file",
    "template",
    "service",
    "package",
    "dest",
    "content",
    "path",
    "state",
    "mode",
    "cmd",
    "src",
    "tags",
    "become",
    "x",
]
TEXTS = st.sampled_from(
    [
        "{{ v }}",
        "{{ v.a }}",
        "{{ nope }}",
        "{% if v %}1{% endif %}",
        "{{ v | int }}",
        "{{",
        "}}",
        "/tmp/x",
        "0644",
        "all",
        "started",
        "directory",
        "echo hi",
        "%",
        "50%",
        "",
    ]
) | st.text(max_size=12)
SCALARS = st.none() | st.booleans() | st.integers(-5, 5000) | TEXTS
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=25,
)
VAR_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _check(text: str, var: Any) -> None:
    try:
        plan = parse_plan(load_yaml_text(text, "p.yml"), "p.yml")
        host = Host("h", {"v": var})
        check_plan(plan, lambda play: [scope_for("h", host.vars, [], play, {})])
        for play in plan.plays:
            for task in play.tasks:
                render_args(task, scope_for("h", host.vars, [], play, {}))
    except AgentError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200), VAR_VALUES)
def test_arbitrary_text_only_raises_agent_errors(text: str, var: Any) -> None:
    _check(text, var)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(VALUES, min_size=1, max_size=3), VAR_VALUES)
def test_arbitrary_plan_structures_only_raise_agent_errors(plays: list[Any], var: Any) -> None:
    _check(yaml.safe_dump(plays), var)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(VALUES, min_size=1, max_size=3).map(lambda tasks: [{"hosts": "all", "tasks": tasks}]),
    VAR_VALUES,
)
def test_arbitrary_tasks_only_raise_agent_errors(plays: list[Any], var: Any) -> None:
    _check(yaml.safe_dump(plays), var)


PLAN = """\
- hosts: all
  tasks:
    - command: printf '%s|' first {{ v }} "{{ v }} tail" '{{ v }}'
"""


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=40).filter(lambda s: "\x00" not in s)
    | st.sampled_from(["{{ 1 }}", "{#", "{% x", "a' b\" c", "$(id)", "; rm -rf /", "\n-x"])
)
def test_no_variable_value_changes_the_command_argv(value: str) -> None:
    play = parse_plan(load_yaml_text(PLAN, "p.yml"), "p.yml").plays[0]
    try:
        params, final = render_args(play.tasks[0], scope_for("h", {"v": value}, [], play, {}))
    except PlanError:
        # variable values are templates themselves (as in Ansible): a broken one is an error
        assert is_template(value)
        return
    assert final
    shown = params["cmd"][3]
    if not is_template(value):
        assert shown == value
    assert params["cmd"] == ["printf", "%s|", "first", shown, f"{shown} tail", shown]
    result = ConnectionApplier(LocalConnection("h")).apply([RunCommand(tuple(params["cmd"]))])[0]
    assert result is not None
    assert result.stdout == f"first|{shown}|{shown} tail|{shown}|"


@pytest.mark.parametrize(("module", "arg"), [("package", "name"), ("command", "cmd")])
def test_a_required_argument_given_as_null_is_one_plan_error(module: str, arg: str) -> None:
    text = yaml.safe_dump([{"hosts": "all", "tasks": [{module: {arg: None}}]}])
    with pytest.raises(AgentError) as err:
        parse_plan(load_yaml_text(text, "p.yml"), "p.yml")
    assert str(err.value) == f"p.yml:4:7: argument {arg!r} must not be null"
