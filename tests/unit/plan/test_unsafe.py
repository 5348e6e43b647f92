"""Plans and -e files: !unsafe values stay literal (Ansible's rule); other tags on lists and
mappings are refused instead of silently dropped."""

from __future__ import annotations

import pytest

from agent.errors import PlanError
from agent.plan.load import load_yaml_text
from agent.plan.vars import Scope


def test_unsafe_values_in_plans_and_extra_vars_stay_literal() -> None:
    data = load_yaml_text(
        "a: !unsafe '{{ 7 * 6 }}'\nb: &u !unsafe ['{{ x }}']\nc: *u\nd: '{{ 7 * 6 }}'\n", "e.yml"
    )
    scope = Scope("h1", [data])
    assert scope.resolve("a") == "{{ 7 * 6 }}"
    assert scope.resolve("b") == scope.resolve("c") == ["{{ x }}"]
    assert scope.resolve("d") == 42


@pytest.mark.parametrize(
    "text",
    ["x: !!python/object/apply:os.system ['id']\n", "x: !!python/tuple [1]\n", "x: !t {a: 1}\n"],
)
def test_a_tag_on_a_list_or_mapping_is_refused_not_ignored(text: str) -> None:
    with pytest.raises(PlanError, match="p.yml:1:4: unsupported YAML tag"):
        load_yaml_text(text, "p.yml")
