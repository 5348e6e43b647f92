"""Bootstrap fresh lab origins with an ACME CA (Debian's pebble on loopback): the http-01
challenge is answered by each origin's own web server on port 80, before any TLS site exists."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.cli import main
from agent.lab import Lab
from tests.integration.cas import Pebble

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bootstrap_with_acme_serves_a_certificate_from_the_acme_ca(
    make_lab: Callable[..., Lab],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORIGIN_AGENT_STATE_DIR", str(tmp_path / "state"))
    lab = make_lab(2, apache=1)
    pebble = Pebble(tmp_path / "pebble", lab.hosts[0].address, 80)
    try:
        for host in lab.hosts:  # each name resolves to its own origin
            body = json.dumps(
                {"host": f"{host.name}.lab.test", "addresses": [host.address]}
            ).encode()
            req = urllib.request.Request(
                f"http://127.0.0.1:{pebble.dns_mgmt_port}/add-a", data=body
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 200
        root = tmp_path / "pebble-root.pem"
        root.write_text(pebble.root_pem())
        issuer = {
            "backend": "acme",
            "directory": pebble.directory,
            "ca_bundle": str(pebble.tls_ca),
            "email": "ops@lab.test",
            "trust": str(root),
        }
        extra = json.dumps({"issuer": issuer})
        capsys.readouterr()
        code = main(["bootstrap", "-i", lab.inventory_path, "-e", extra, "--json"])
        out = capsys.readouterr()
        assert code == 0, out.out[-3000:] + out.err
        capsys.readouterr()
        assert (
            main(
                [
                    "status",
                    "-i",
                    lab.inventory_path,
                    "--trust",
                    str(root),
                    "--json",
                    "--require-mode",
                    "strict",
                ]
            )
            == 0
        )
        rows = json.loads(capsys.readouterr().out)["rows"]
        assert {r["host"] for r in rows} == {h.name for h in lab.hosts}
        assert all("Pebble Intermediate" in r["issuer"] for r in rows)
        for host in lab.hosts:  # no challenge file is left behind
            left = host.exec(["find", "/var/www/acme/.well-known/acme-challenge", "-type", "f"])
            assert left.stdout == b""
        code = main(["bootstrap", "-i", lab.inventory_path, "-e", extra, "--json"])
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert code == 0 and all(h["changed"] == 0 for h in events[-1]["hosts"])
    finally:
        pebble.stop()
