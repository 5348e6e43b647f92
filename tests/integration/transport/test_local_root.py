"""LocalConnection where the contract needs root: file owners and switching user."""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

import pytest

from agent.transport.base import Owner
from agent.transport.local import LocalConnection

pytestmark = pytest.mark.integration


@pytest.fixture()
def conn(tmp_path: Path) -> LocalConnection:
    (tmp_path / "etc").mkdir()
    return LocalConnection("web-1", root=tmp_path)


def test_write_with_owner_chowns(conn: LocalConnection, tmp_path: Path) -> None:
    assert os.geteuid() == 0, "chown needs root: run the tests as root (make test)"
    conn.write("/etc/o", b"x", mode=0o640, owner=Owner("nobody", "nogroup"))
    st = conn.stat("/etc/o")
    assert st.uid == pwd.getpwnam("nobody").pw_uid
    assert st.gid == grp.getgrnam("nogroup").gr_gid
    assert st.mode == 0o640


def test_become_runs_as_the_become_user(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "switching user needs root: run the tests as root (make test)"
    conn = LocalConnection(become_user="nobody")
    assert conn.run(["id", "-un"], become=True).stdout.strip() == "nobody"
    assert conn.run(["id", "-un"]).stdout.strip() == "root"
