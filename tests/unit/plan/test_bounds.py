"""Templates cannot exhaust the controller: every operator and filter that builds a string or
list checks the size first, ~ is bounded, range() loops are counted, output is capped."""

from __future__ import annotations

import time

import pytest

from agent.errors import PlanError
from agent.plan.vars import Scope

pytestmark = pytest.mark.hostile


def render(text: str, **variables: object) -> object:
    return Scope("h1", [variables]).render_text(text, "plan.yml:3:9")


@pytest.mark.parametrize(
    "template",
    [
        "{{ '%999999999s' % 'x' }}",
        "{{ '%.999999999f' % 1.5 }}",
        "{{ '%*s' % (999999999, 'x') }}",
        "{{ '{:>999999999}'.format('x') }}",
        "{{ '{:{w}}'.format('x', w=999999999) }}",
        "{{ '%999999999s'|format('x') }}",
        "{{ 'x'|center(999999999) }}",
        "{{ 'ab\ncd'|indent(999999999) }}",
        "{% set s = 'x' * 1000000 %}{{ (s ~ s ~ s ~ s ~ s ~ s ~ s ~ s)|length }}",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{{ 'x'.ljust(999999999) }}",
        "{{ 'x'.zfill(999999999) }}",
        "{{ 'a\tb'.expandtabs(999999999) }}",
        "{{ ('x' * 1000000).replace('x', 'yy') }}",
        "{{ ('x' * 1000000)|replace('x', 'yy') }}",
        "{{ 'abc'|wordwrap(1, wrapstring='x' * 900000) }}",
        "{{ [1, 2, 3]|batch(999999999, 0)|list|length }}",
        "{{ (['x' * 1000000] * 1000000)|join('') }}",
        "{{ ''.join(['x' * 1000000] * 1000) }}",
        "{% for i in range(5) %}{{ 'x' * 1000000 }}{% endfor %}",
    ],
)
def test_a_template_that_would_build_gigabytes_fails_at_once(template: str) -> None:
    started = time.process_time()
    with pytest.raises(PlanError) as exc:
        render(template)
    assert time.process_time() - started < 2
    text = str(exc.value)
    assert text.startswith("plan.yml:3:9: template failed for host h1: SecurityError: ")
    assert "\n" not in text


def test_variables_that_fan_out_are_bounded() -> None:
    layers = {"v0": "x" * 1000}
    for n in range(1, 10):
        layers[f"v{n}"] = ("{{ v" + str(n - 1) + " }}") * 10
    started = time.process_time()
    with pytest.raises(PlanError, match="SecurityError"):
        Scope("h1", [layers]).resolve("v9")
    assert time.process_time() - started < 2


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ '%05.2f' % 3.14159 }}", "03.14"),
        ("{{ '%s-%d'|format('a', 3) }}", "a-3"),
        ("{{ '{:>4}'.format('x') }}", "   x"),
        ("{{ 'a b'|center(7) }}", "  a b  "),
        ("{{ 'a\nb'|indent(2) }}", "a\n  b"),
        ("{{ [1, 2]|join(',') }}", "1,2"),
        ("{{ range(3)|list }}", [0, 1, 2]),
        ("{{ range(3)|length }}", 3),
        ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
        ("{{ 'a' ~ 1 ~ 'b' }}", "a1b"),
        ("{{ 'abc'.replace('b', 'x') }}", "axc"),
        ("{{ [[1, 2], [3]]|map('join', '-')|join(',') }}", "1-2,3"),
    ],
)
def test_ordinary_templates_render_as_before(template: str, expected: object) -> None:
    assert render(template) == expected
