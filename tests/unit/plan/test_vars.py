"""Variables: precedence, lazy rendering, native types, the sandbox."""

from __future__ import annotations

import pytest

from agent.errors import PlanError
from agent.inventory.model import Host
from agent.plan.load import load_yaml_text
from agent.plan.parse import parse_plan
from agent.plan.render import render_args, scope_for
from agent.plan.vars import Scope


def play_of(text: str):  # type: ignore[no-untyped-def]
    return parse_plan(load_yaml_text(text, "p.yml"), "p.yml").plays[0]


def test_precedence_inventory_play_files_extra(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "v.yml").write_text("b: file\nc: file\n")
    plan_file = tmp_path / "p.yml"
    plan_file.write_text(
        "- hosts: all\n  vars: {a: play, b: play, c: play}\n  vars_files: [v.yml]\n"
    )
    text = plan_file.read_text()
    play = parse_plan(load_yaml_text(text, str(plan_file)), str(plan_file)).plays[0]
    host = Host("h", {"a": "inv", "b": "inv", "c": "inv", "d": "inv", "e": "inv"})
    scope = scope_for("h", host.vars, ["all", "web"], play, {"c": "extra"}, {"e": "registered"})
    assert [scope.resolve(n) for n in "abcde"] == ["play", "file", "extra", "inv", "registered"]
    assert scope.resolve("inventory_hostname") == "h"
    assert scope.resolve("group_names") == ["web"]


def test_variables_render_lazily_through_each_other() -> None:
    scope = Scope("h", [{"base": "/srv", "site": "{{ base }}/{{ name }}", "name": "x"}])
    assert scope.render_text("{{ site }}/index.html", "p") == "/srv/x/index.html"


def test_lone_expression_keeps_native_type() -> None:
    scope = Scope("h", [{"n": 5, "l": [1, 2]}])
    assert scope.render_text("{{ n + 1 }}", "p") == 6
    assert scope.render_text("{{ l }}", "p") == [1, 2]
    assert scope.render_text("n={{ n }}", "p") == "n=5"


def test_cycle_is_an_error_not_a_hang() -> None:
    scope = Scope("h", [{"a": "{{ b }}", "b": "{{ a }}"}])
    with pytest.raises(PlanError, match="loop: a -> b -> a"):
        scope.render_text("{{ a }}", "p")


@pytest.mark.parametrize(
    "template,message",
    [
        ("{{ ().__class__.__bases__ }}", "unsafe"),
        ("{{ 9 ** 999999 }}", "exponent too large"),
        ("{{ 'x' * 100000000 }}", "result too large"),
        ("{{ range(10**9) | list }}", "Range too big"),
        ("{{ 1 / 0 }}", "division by zero"),
        ("{{ l.nope }}", "has no attribute 'nope'"),
        ("{{ missing }}", "undefined variable 'missing' for host h"),
    ],
)
def test_template_failures_are_plan_errors(template: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        Scope("h", [{"l": [1]}]).render_text(template, "p:1:1")


def test_is_defined_works_with_strict_undefined() -> None:
    scope = Scope("h", [{}])
    assert scope.evaluate("missing is defined", "p") is False
    assert scope.evaluate("missing | default('x') == 'x'", "p") is True


def test_command_string_is_split_before_rendering() -> None:
    play = play_of('- hosts: all\n  tasks:\n    - command: echo {{ v }} "{{ w }} z"\n')
    scope = scope_for("h", {"v": "a b; rm -rf /", "w": "$(id)"}, [], play, {})
    params, final = render_args(play.tasks[0], scope)
    assert final
    assert params["cmd"] == ["echo", "a b; rm -rf /", "$(id) z"]


def test_template_file_errors_name_the_template_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    scope = Scope("h", [{"a": 1}])
    with pytest.raises(PlanError, match=r"^t.j2:3: undefined variable 'b' for host h"):
        scope.render_file("x\n{{ a }}\n{{ b }}\n", "t.j2")


def test_module_context_sees_every_variable_rendered_on_access() -> None:
    scope = Scope("h", [{"names": ["a.example"], "addr": "{{ ip }}", "ip": "127.0.1.9"}])
    view = scope.view()
    assert view.get("names") == ["a.example"]
    assert view["addr"] == "127.0.1.9"
    assert view.get("missing") is None and "ip" in view and len(view) == 3


def test_variables_using_loop_item_render_again_per_item() -> None:
    scope = Scope("h", [{"path": "/srv/{{ item }}"}])
    seen = []
    for item in ("a", "b"):
        scope.set("item", item)
        seen.append(scope.render_text("{{ path }}", "p"))
    assert seen == ["/srv/a", "/srv/b"]


def test_registered_host_output_is_never_rendered_as_a_template() -> None:
    scope = Scope("h", [{"secret": "s"}])
    scope.set("out", {"stdout": "{{ secret }}"})
    scope.set("item", 1)
    assert scope.render_text("{{ out.stdout }}", "p") == "{{ secret }}"
