"""One sandbox for everything rendered: plans, variables and site templates all render in
:class:`agent.sandbox.BoundedSandbox`, and a ``{% for %}`` over a huge list stops quickly."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

from agent import sandbox
from agent.errors import AgentError
from agent.plan import vars as plan_vars
from agent.sandbox import BoundedSandbox
from agent.servers import templating

pytestmark = pytest.mark.hostile

AGENT = Path(__file__).resolve().parents[2] / "agent"
JINJA_ENVIRONMENTS = {
    "Environment",
    "SandboxedEnvironment",
    "ImmutableSandboxedEnvironment",
    "NativeEnvironment",
}


def test_no_module_but_the_sandbox_makes_a_jinja_environment() -> None:
    found = []
    for path in sorted(AGENT.rglob("*.py")):
        if path.name == "sandbox.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name in JINJA_ENVIRONMENTS:
                    found.append(f"{path.relative_to(AGENT.parent)}:{node.lineno}")
    assert found == []


def test_plans_variables_and_site_templates_share_the_sandbox(tmp_path: Path) -> None:
    assert type(plan_vars.ENV) is BoundedSandbox
    assert type(templating._environment(str(tmp_path))) is BoundedSandbox


LOOPS = [
    "{% for x in xs %}{% endfor %}",
    "{% for x in xs %}{% for y in xs %}{% endfor %}{% endfor %}",
    "{% for x in xs if x %}{% endfor %}",
    "{{ xs | length }}{% for k in xs %}{{ loop.length }}{% endfor %}",
]


def test_a_site_template_looping_over_ten_million_items_stops_quickly(tmp_path: Path) -> None:
    template = tmp_path / "site.j2"
    template.write_text("{% for x in xs %}{% endfor %}\n")
    started = time.process_time()
    with pytest.raises(AgentError) as err:
        templating.render_template(template, {"xs": range(10**7)})
    assert time.process_time() - started < 10
    assert "loops ran more than" in str(err.value) and "\n" not in str(err.value)


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A budget of 1000 items, so the cases below need lists of thousands, not millions."""
    monkeypatch.setattr(sandbox, "MAX_ITERATIONS", 1000)
    return list(range(1010))


@pytest.mark.parametrize("loop", LOOPS)
def test_a_site_template_looping_over_a_huge_list_stops_in_one_line(
    tmp_path: Path, loop: str, small_budget: list[int]
) -> None:
    template = tmp_path / "site.j2"
    template.write_text(loop + "\n")
    with pytest.raises(AgentError) as err:
        templating.render_template(template, {"xs": small_budget})
    assert "loops ran more than" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_plan_value_looping_over_a_huge_list_stops_in_one_line(
    loop: str, small_budget: list[int]
) -> None:
    scope = plan_vars.Scope("h", [{"xs": small_budget}])
    with pytest.raises(AgentError) as err:
        scope.render_text(loop, None)
    assert "loops ran more than" in str(err.value) and "\n" not in str(err.value)


def test_loops_within_the_budget_still_work(tmp_path: Path) -> None:
    template = tmp_path / "site.j2"
    template.write_text("{% for x in xs %}{{ x }}{{ loop.index }},{% endfor %}\n")
    assert templating.render_template(template, {"xs": ["a", "b"]}) == "a1,b2,"
