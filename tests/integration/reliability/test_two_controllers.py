"""Two controllers, one fleet: two ``rotate --force`` runs from two state directories (so no
controller-side lock keeps them apart) started together on the same origins. Each origin's
transactions take its lock in turn: every origin ends rotated once or twice, no run fails
because of the other, and every origin serves a certificate with its own key."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.lab import Lab
from tests.integration.reliability.fleet import cli_argv, cli_env, write_inventory
from tests.integration.reliability.test_interrupted import pairs_problems

pytestmark = [pytest.mark.integration]


def test_two_controllers_rotating_one_fleet_never_fail_each_other(
    make_lab: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = make_lab(3, apache=1)
    inv = write_inventory(lab, tmp_path)
    first = subprocess.run(
        cli_argv("bootstrap", "-i", inv),
        env=cli_env(str(tmp_path / "state-a")),
        capture_output=True,
        timeout=300,
    )
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    runs = [
        subprocess.Popen(
            cli_argv("rotate", "-i", inv, "--force"),
            env=cli_env(str(tmp_path / f"state-{name}")),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in ("a", "b")
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (out, _err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out.decode()[-3000:]
        assert b"0 failed" in out, out.decode()[-1500:]
    problems = [p for host in lab.hosts for p in pairs_problems(host)]
    assert not problems, "\n".join(problems)
