"""Plans and -e files: !unsafe values stay literal (Ansible's rule); other tags on lists and
mappings are refused instead of silently dropped; a FIFO or device is refused, not read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.errors import PlanError
from agent.plan.load import load_yaml, load_yaml_text
from agent.plan.vars import Scope

pytestmark = pytest.mark.hostile


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


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_plan_or_extra_vars_file_that_is_not_a_regular_file_is_refused(
    tmp_path: Path, special: str
) -> None:
    path = Path(special)
    if special == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    with pytest.raises(PlanError, match="not a regular file"):
        load_yaml(path)
