"""The gather script run by the real ``sh``, ``tar`` and ``base64`` on a directory tree made
here, parsed back: what it reports is what is on disk."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agent.modules.tls import facts

pytestmark = pytest.mark.integration


def gather(tmp: Path, **kw: object) -> facts.OriginFacts:
    args: dict[str, object] = {
        "root": str(tmp / "ssl/site"),
        "files": [],
        "links": [],
        "checks": [],
        "detect": [str(tmp / "bin/nginx"), str(tmp / "nginx"), str(tmp / "bin/apache2")],
        "pid_files": [str(tmp / "nginx.pid")],
    }
    args.update(kw)
    script = facts.script(**args)  # type: ignore[arg-type]
    out = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, check=True, timeout=30
    )
    assert out.stdout.rstrip().endswith(("@@running", "yes"))
    return facts.parse(
        out.stdout, detect_parser=lambda text: [line.rsplit("/", 1)[-1] for line in text.split()]
    )


def test_a_fresh_origin_reads_as_empty(tmp_path: Path) -> None:
    got = gather(tmp_path, files=[str(tmp_path / "site.conf")], links=[str(tmp_path / "en.conf")])
    assert got.servers == () and got.current_version is None and got.fullchain_pem is None
    assert got.files == {str(tmp_path / "site.conf"): None}
    assert got.links == {str(tmp_path / "en.conf"): None}
    assert got.leftovers == 0 and got.server_running is False and got.meta == {}


def test_every_fact_matches_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "ssl/site"
    version = root / "20260101T000000Z-abcd"
    version.mkdir(parents=True)
    (version / "fullchain.pem").write_text("CHAIN\n")
    (version / "meta.json").write_text('{"issuer_id": "i1"}')
    (root / "current").symlink_to(version.name)
    (root / "next").mkdir()
    (root / "next/pubkey.pem").write_text("PUB\n")
    for n in range(3):
        (root / f".origin-agent-tmp-{n}").mkdir()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/nginx").touch()
    (tmp_path / "nginx").mkdir()
    site = tmp_path / "site.conf"
    site.write_bytes(b"server {}\n@@running\nno\n\x00\xff no final newline")
    real_main = tmp_path / "real-nginx.conf"
    real_main.write_text("http {}\n")
    main = tmp_path / "nginx.conf"
    main.symlink_to(real_main)  # a config file behind a symlink is read through it
    enabled = tmp_path / "en.conf"
    enabled.symlink_to(site)
    plain = tmp_path / "plain.conf"
    plain.write_text("x")  # a path wanted as a link that is a regular file
    (tmp_path / "nginx.pid").write_text(f"{os.getpid()}\n")
    got = gather(
        tmp_path,
        files=[str(site), str(main), str(tmp_path / "missing.conf")],
        links=[str(enabled), str(plain)],
        checks=[[["test", "-e", str(site)]], [["test", "-e", str(tmp_path / "nope")]]],
    )
    assert got.servers == ("nginx", "nginx")  # binary and config dir listed, apache2 absent
    assert got.current_version == version.name
    assert got.fullchain_pem == "CHAIN\n" and got.next_pubkey_pem == "PUB\n"
    assert got.meta == {"issuer_id": "i1"} and got.leftovers == 3
    assert got.files == {
        str(site): site.read_bytes(),
        str(main): b"http {}\n",
        str(tmp_path / "missing.conf"): None,
    }
    assert got.links == {str(enabled): str(site), str(plain): None}
    assert got.checks == (True, False) and got.server_running is True


@pytest.mark.parametrize("pid", ["", "-1\n", "0x1\n", "999999999\n"])
def test_a_pid_file_that_names_no_process_reads_as_not_running(tmp_path: Path, pid: str) -> None:
    (tmp_path / "nginx.pid").write_text(pid)
    assert gather(tmp_path).server_running is False
