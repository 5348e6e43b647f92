"""``--renew-before`` and the rotate plan carry no default of their own: unset stays unset (the
renewal policy's default applies) and 0 stays 0."""

from __future__ import annotations

import pytest

from agent.cli import build_parser
from agent.inventory.model import Host
from agent.plan.parse import load_plan
from agent.plan.render import scope_for
from agent.resources import data_dir


@pytest.mark.parametrize(
    ("argv", "expected"), [([], None), (["--renew-before", "0"], 0), (["--renew-before", "7"], 7)]
)
def test_rotate_flag_has_no_default_and_keeps_zero(argv: list[str], expected: int | None) -> None:
    args = build_parser("rotate").parse_args(["rotate", "-i", "inv.yml", *argv])
    assert args.renew_before == expected


@pytest.mark.parametrize(("extra", "expected"), [({}, None), ({"renew_before_days": 0}, 0)])
def test_rotate_plan_passes_renew_before_days_through(
    extra: dict[str, int], expected: int | None
) -> None:
    play = load_plan(str(data_dir("plans") / "rotate.yml")).plays[0]
    task = play.tasks[0]
    scope = scope_for("h", Host("h", {}).vars, [], play, extra)
    assert scope.render(task.args["renew_before_days"], task.where("renew_before_days")) == expected
