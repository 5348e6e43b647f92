"""Injection proofs on real components: a real ``~/.ssh/config`` with a ``Match exec`` line
(paramiko runs it through a shell) and real nginx/apache2 config tests on what was rendered.

Each proof has a control that shows it could fail: the ``Match exec`` line does run for a
plain address, and the servers' config tests do check what we render.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli import main
from agent.errors import ValidationError
from tests.integration.test_servers import Origin, origin, pki  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration
# invoke (which paramiko runs Match exec with) leaves its pipes to the garbage collector
INVOKE_LEAKS = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

HOSTILE_ADDRESSES = [
    "::1%x$(touch {d}/pwned)",
    "fe80::1%lo`touch {d}/pwned`",
    "::1%lo;touch {d}/pwned",
]


@pytest.fixture(autouse=True)
def _stdin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """paramiko runs Match exec through invoke, which reads stdin: give it /dev/null."""
    with open(os.devnull) as null:
        monkeypatch.setattr(sys, "stdin", null)
        yield


def _ssh_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        f'Match exec "touch {tmp_path}/ran-%h"\n    User deploy\n'
    )
    return home


def _run_check(tmp_path: Path, address: str) -> int:
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    web1: {ansible_host: " + json.dumps(address) + ", ansible_port: 1}\n"
    )
    plan = tmp_path / "plan.yml"
    plan.write_text("- hosts: all\n  tasks:\n    - command: {cmd: 'true'}\n")
    code = main(["run", str(plan), "-i", str(inv), "--check"])
    gc.collect()  # invoke's leaked pipes are reported here, inside the test that made them
    return code


@INVOKE_LEAKS
def test_control_the_match_exec_line_runs_for_a_plain_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(_ssh_home(tmp_path)))
    monkeypatch.chdir(tmp_path)
    assert _run_check(tmp_path, "127.0.0.1") == 3  # nothing listens on port 1
    assert (tmp_path / "ran-127.0.0.1").exists()


@INVOKE_LEAKS
@pytest.mark.parametrize("template", HOSTILE_ADDRESSES)
def test_an_address_with_a_command_in_its_scope_id_runs_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    template: str,
) -> None:
    monkeypatch.setenv("HOME", str(_ssh_home(tmp_path)))
    monkeypatch.chdir(tmp_path)
    assert _run_check(tmp_path, template.format(d=tmp_path)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "web1" in err[0]
    assert not (tmp_path / "pwned").exists()
    assert not list(tmp_path.glob("ran-*"))  # ssh_config was never even consulted


LISTEN_INJECTIONS = [
    "::1%lo]:8080;\n    add_header X-Injected yes always;\n    #",
    "fe80::1%lo]:8443>\nHeader always set X-Injected yes\n#",
    "127.0.0.1;",
    "127.0.0.1:80 ssl; include /etc/shadow",
]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_listen_address_injection_is_refused_and_what_is_rendered_passes_the_config_test(
    origin: Origin,  # noqa: F811 (the fixture)
) -> None:
    before = _tree(origin.conf_dir)
    for value in LISTEN_INJECTIONS:
        with pytest.raises(ValidationError) as err:
            origin.deploy(origin.site(listen_address=value))
        assert "\n" not in str(err.value)
    assert _tree(origin.conf_dir) == before  # byte-identical: nothing was written
    for address in (origin.address, "::1"):
        origin.deploy(origin.site(listen_address=address))
        result = origin.config_test()
        assert result.returncode == 0, result.stdout + result.stderr


def test_control_the_config_test_catches_an_injected_directive(
    origin: Origin,  # noqa: F811 (the fixture)
) -> None:
    site = origin.site()
    origin.deploy(site)
    path = Path(origin.adapter.site_path(site.name))
    path.write_text(path.read_text() + "\nthis is not a directive;\n")
    assert origin.config_test().returncode != 0
