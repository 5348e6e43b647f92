"""`status`, `pins` and `promote` on lab origins whose ``tls_names`` are a template, as in
``inventories/example.yml``: they show and judge the names a plan renders."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from agent.cli import main
from agent.lab import Lab
from tests.emulators.cloudflare import CloudflareEmulator

pytestmark = pytest.mark.integration

ZONE = "023e105f4ecef8ad9ca31a8372d0c353"


def _templated(lab: Lab, directory: Path) -> str:
    data = yaml.safe_load(Path(lab.inventory_path).read_text())
    for group in data["all"]["children"].values():
        for host in group["hosts"].values():
            host["tls_names"] = ["{{ inventory_hostname }}.lab.test"]
            host["cloudflare_zone"] = "{{ zone }}"
    data["all"]["vars"]["zone"] = ZONE
    path = directory / "templated.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def test_status_pins_and_promote_show_the_rendered_names(
    make_lab: Callable[..., Lab],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORIGIN_AGENT_STATE_DIR", str(tmp_path / "state"))
    lab = make_lab(2, apache=1)
    inv = _templated(lab, tmp_path)
    assert main(["bootstrap", "-i", inv]) == 0
    capsys.readouterr()
    assert main(["status", "-i", inv, "--json", "--require-mode", "strict"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert sorted(r["name"] for r in rows) == sorted(f"{h.name}.lab.test" for h in lab.hosts)
    assert all(r["mode"] == "strict" and not r["reasons"] for r in rows), rows

    assert main(["pins", "-i", inv, "--json"]) == 0
    pins = json.loads(capsys.readouterr().out)["rows"]
    assert sorted(r["name"] for r in pins) == sorted(f"{h.name}.lab.test" for h in lab.hosts)

    with CloudflareEmulator(zones={ZONE: "lab.test"}) as cf:
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", cf.token)
        assert cf.ca_bundle is not None
        code = main(
            ["promote", "--zone", ZONE, "-i", inv, "--api-base", cf.base_url]
            + ["--ca-bundle", cf.ca_bundle, "--check"]
        )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 origins ready for Full (strict)" in out
