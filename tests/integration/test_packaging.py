"""The wheel carries templates/ and plans/ and the Origin CA roots, and an installed copy (not
the checkout) finds them: built offline from a copy of the sources, installed into a fresh
virtualenv."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import json, agent
from agent.resources import data_dir
from agent.commands.run import bundled_plan
from agent.plan.parse import load_plan
from agent.servers.base import adapter_for
from agent.servers.site import SiteSpec
from agent.pki import trust
site = SiteSpec(name="o", server_names=("o.example.com",))
print(json.dumps({
    "roots": str(trust.resources.files("agent.pki").joinpath("roots")),
    "origin_ca": [c.fingerprint(trust.hashes.SHA256()).hex() for c in trust.origin_ca_roots()],
    "edge": len(trust.default_trust()),
    "package": agent.__file__,
    "templates": str(data_dir("templates")),
    "plans": str(data_dir("plans")),
    "plays": len(load_plan(bundled_plan("rotate")).plays),
    "nginx": adapter_for("nginx").render_site(site),
    "apache": adapter_for("apache").render_policy(site),
}))
"""


def test_an_installed_wheel_finds_its_templates_and_plans(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("agent", "templates", "plans"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(
        [
            *pip,
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            str(src),
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=tmp_path,
    )
    wheel = next((tmp_path / "dist").glob("origin_agent-*.whl"))
    data = {
        n.split(".data/data/", 1)[1]
        for n in zipfile.ZipFile(wheel).namelist()
        if ".data/data/" in n
    }
    for kind, pattern in (("templates", "*/*.j2"), ("plans", "*.yml")):
        shipped = {
            f"share/origin-agent/{kind}/{p.relative_to(REPO / kind)}"
            for p in (REPO / kind).glob(pattern)
        }
        assert shipped and shipped <= data, shipped - data

    ours = Path(sys.prefix) / "bin" / "origin-agent"  # this environment's install, untouched
    had_ours = ours.exists()
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=120)
    # Its own pip (bundled, offline): this environment's pip would uninstall the editable
    # origin-agent it sees here before installing the wheel elsewhere.
    subprocess.run(
        [
            str(env_dir / "bin" / "python"),
            *pip[1:],
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=tmp_path,
    )
    target = (
        env_dir
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "site-packages"
    )
    # Then the dependencies from this environment (a .pth only adds the path: this
    # environment's own .pth files, the editable origin-agent among them, are not read).
    (target / "zz-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    out = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    assert got["package"].startswith(str(target))
    assert got["templates"] == str(env_dir / "share/origin-agent/templates")
    assert got["plans"] == str(env_dir / "share/origin-agent/plans")
    assert got["plays"] >= 1
    assert "server_name o.example.com;" in got["nginx"] and "SSLProtocol" in got["apache"]
    assert got["roots"].startswith(str(target))
    assert sorted(got["origin_ca"]) == [
        "aa63697a22764b67b2134ce14cb5690ea336940b93986113f49545917832d80d",
        "d3c7e85c91707fc0a12abc5d88266747aa4fa8e7b162f633ffb3c9d989947620",
    ]
    assert got["edge"] > 100
    assert ours.exists() == had_ours
