"""The run engine over SSH on the lab: convergence, idempotence, check mode, rolling batches
with a failure threshold, and an unreachable host."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.lab import Lab, faults

pytestmark = pytest.mark.integration

PLANS = Path(__file__).parents[1] / "fixtures" / "plans"
ROOT = "/etc/origin-agent-demo"


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    capsys.readouterr()
    code = main(["run", *argv, "--json"])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines()]


def recap(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in events[-1]["hosts"]}


def snapshot(lab: Lab) -> dict[tuple[str, str], tuple[bytes | str, int]]:
    """Every file, link and directory under ROOT on every host, with its mode."""
    found: dict[tuple[str, str], tuple[bytes | str, int]] = {}
    for host in lab.hosts:
        base = host.path(ROOT)
        for dirpath, dirnames, filenames in os.walk(base):
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                st = os.lstat(full)
                if os.path.islink(full):
                    content: bytes | str = os.readlink(full)
                elif os.path.isfile(full):
                    content = Path(full).read_bytes()
                else:
                    content = "dir"
                found[(host.name, full[len(base) :])] = (content, st.st_mode)
    return found


@pytest.fixture
def clean_demo(lab: Lab) -> Iterator[None]:
    def wipe() -> None:
        for host in lab.hosts:
            host.exec(["rm", "-rf", ROOT])

    wipe()
    try:
        yield
    finally:
        wipe()


def test_plan_converges_reruns_clean_and_check_mode_changes_nothing(
    lab: Lab, clean_demo: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = str(PLANS / "lab_converge.yml")
    inv = lab.inventory_path
    for host in lab.hosts:
        host.exec(["mkdir", "-p", ROOT])
        host.exec(["touch", f"{ROOT}/stale"])
    code, events = run_json(capsys, plan, "-i", inv, "-e", "demo_secret=S3CRET-VALUE")
    assert code == 0
    assert all(h["changed"] == 9 and h["failed"] == 0 for h in recap(events).values())
    assert "S3CRET-VALUE" not in json.dumps(events)
    for host in lab.hosts:
        site = Path(host.path(f"{ROOT}/site.conf")).read_text()
        assert f"listen {host.address}:8080;" in site
        assert os.stat(host.path(f"{ROOT}/secret.key")).st_mode & 0o777 == 0o600
        assert not os.path.exists(host.path(f"{ROOT}/stale"))

    code, events = run_json(capsys, plan, "-i", inv, "-e", "demo_secret=S3CRET-VALUE")
    assert code == 0
    assert [h["changed"] for h in recap(events).values()] == [0] * len(lab.hosts)

    # a changed plan, in check mode: nothing changes, exactly the two changes are reported
    changed_dir = tmp_path / "changed"
    shutil.copytree(PLANS / "templates", changed_dir / "templates")
    text = (
        (PLANS / "lab_converge.yml")
        .read_text()
        .replace(
            'content: "origin {{ inventory_hostname }}', 'content: "edge {{ inventory_hostname }}'
        )
    )
    (changed_dir / "plan.yml").write_text(text)
    before = snapshot(lab)
    code, events = run_json(
        capsys,
        str(changed_dir / "plan.yml"),
        "-i",
        inv,
        "--check",
        "--diff",
        "-e",
        "demo_secret=S3CRET-VALUE",
    )
    assert code == 0
    assert snapshot(lab) == before
    changed = sorted(
        (e["host"], e["task"], tuple(e["changes"]))
        for e in events
        if e["event"] == "task_done" and e["status"] == "changed"
    )
    expected = []
    for host in lab.hosts:
        size = len(f"edge {host.name}\n")
        expected.append((host.name, "index", (f"write {ROOT}/index.txt ({size} bytes) mode=0644",)))
        expected.append(
            (host.name, "mark handled", (f"run /bin/sh -c 'date +%s > {ROOT}/handled'",))
        )
    assert changed == sorted(expected)
    diffs = [e["diff"] for e in events if e["event"] == "task_done" and e["task"] == "index"]
    assert all("-origin " in d and "+edge " in d for d in diffs)


def test_failure_in_first_batch_stops_the_rollout(
    lab: Lab, clean_demo: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = lab.hosts[1].name
    plan = tmp_path / "serial.yml"
    plan.write_text(f"""\
- hosts: all
  serial: 2
  max_fail_percentage: 0
  tasks:
    - command: ["test", "{{{{ inventory_hostname }}}}", "!=", "{failing}"]
    - file: {{path: {ROOT}, state: directory}}
""")
    code, events = run_json(capsys, str(plan), "-i", lab.inventory_path)
    assert code == 1
    batches = [e["hosts"] for e in events if e["event"] == "batch_started"]
    assert batches == [[lab.hosts[0].name, failing]]
    aborted = [e for e in events if e["event"] == "batch_aborted"]
    assert aborted and aborted[0]["hosts_not_run"] == [h.name for h in lab.hosts[2:]]
    assert os.path.isdir(lab.hosts[0].path(ROOT))
    assert not any(os.path.exists(h.path(ROOT)) for h in lab.hosts[1:])
    result = recap(events)
    assert result[failing]["failed"] == 1
    assert all(result[h.name]["not_run"] for h in lab.hosts[2:])


def test_host_with_sshd_stopped_is_unreachable_and_others_finish(
    lab: Lab, clean_demo: None, capsys: pytest.CaptureFixture[str]
) -> None:
    down = lab.hosts[2]
    faults.get("sshd-stopped").inject(down)
    try:
        code, events = run_json(
            capsys, str(PLANS / "lab_converge.yml"), "-i", lab.inventory_path, "-e", "demo_secret=x"
        )
    finally:
        faults.get("sshd-stopped").undo(down)
    assert code == 3
    result = recap(events)
    assert result[down.name]["unreachable"] and result[down.name]["failed"] == 0
    assert [e["host"] for e in events if e["event"] == "host_unreachable"] == [down.name]
    for host in lab.hosts:
        if host is not down:
            assert result[host.name]["failed"] == 0 and result[host.name]["changed"] == 8
            assert os.path.isfile(host.path(f"{ROOT}/index.txt"))
