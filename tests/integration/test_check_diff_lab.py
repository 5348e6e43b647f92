"""``--check --diff`` tells the story the script then acts out: on real lab origins (nginx and
apache2), every path the transaction script journals, in its order, is a change the check run
listed, and the check run wrote nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.lab import Lab
from agent.modules.tls.transaction import PENDING_VERSION, TXN_ROOT
from tests.integration.test_tls_origin import name_of, run

pytestmark = pytest.mark.integration

_PATH = re.compile(r"^(?:write|link|create directory|remove) (/\S+)")
_VERSION = re.compile(r"/[0-9]{8}T[0-9]{6}Z-[0-9a-f]{4,16}(?=/|$)")


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORIGIN_AGENT_STATE_DIR", str(tmp_path / "state"))


def listed_paths(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        match = _PATH.match(line)
        if match:
            out.append(_VERSION.sub(f"/{PENDING_VERSION}", match.group(1)))
    return out


def test_check_mode_lists_exactly_what_the_script_then_does(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(2, apache=1)
    code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path, "--check", "--diff")
    assert code == 0, err
    checked = {
        e["host"]: list(e["changes"])
        for e in events
        if e.get("event") == "task_done" and e.get("module") == "tls_origin"
    }
    assert set(checked) == {h.name for h in lab.hosts}
    for host in lab.hosts:
        assert not Path(host.path(f"{TXN_ROOT}/{name_of(host)}")).exists()  # nothing written
    code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    assert code == 0, err
    for host in lab.hosts:
        journal = Path(host.path(f"{TXN_ROOT}/{name_of(host)}/last/journal")).read_text()
        entries = [line.split(" ") for line in journal.splitlines()]
        # "dirsnap" marks a directory an enable command (a2enmod...) may add to: not a change
        done = [_VERSION.sub(f"/{PENDING_VERSION}", e[1]) for e in entries if e[0] != "dirsnap"]
        listed = listed_paths(checked[host.name])
        assert done, host.name
        # the journal is what the script did, in order; the check run listed each of them,
        # in the same order, and listed nothing else the script could have journalled
        in_order = [p for p in listed if p in done]
        assert in_order == done, (host.name, listed, done)
        unjournalled = [p for p in listed if p not in done and f"/{PENDING_VERSION}/" not in p]
        assert unjournalled == [], (host.name, unjournalled)
