"""`origin-agent ca init` in process."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.cli import main


def test_ca_init_says_where_the_root_to_trust_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "ca"
    assert (
        main(
            [
                "ca",
                "init",
                str(target),
                "--intermediate",
                "--name",
                "Edge Trust",
                "--days",
                "30",
                "--key-type",
                "ec384",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"root certificate (the edge must trust this): {target / 'root.pem'}" in out
    assert f"use it: issuer: {{backend: localca, dir: {target}}}" in out
    assert "PRIVATE KEY" not in out
    for key in ("root.key", "intermediate.key"):
        assert stat.S_IMODE((target / key).stat().st_mode) == 0o600


def test_ca_init_refuses_an_existing_ca_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "ca"
    assert main(["ca", "init", str(target)]) == 0
    root = (target / "root.pem").read_bytes()
    capsys.readouterr()
    assert main(["ca", "init", str(target)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"origin-agent: issuer localca: {target} already holds a CA (root.pem); "
        "refusing to overwrite it; choose another directory\n"
    )
    assert (target / "root.pem").read_bytes() == root


def test_ca_init_rejects_an_unknown_key_type(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ca", "init", str(tmp_path / "ca"), "--key-type", "dsa"])
    assert exc.value.code == 2
    assert not (tmp_path / "ca").exists()


def test_ca_revoke_records_the_serial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agent.pki.csr import make_csr
    from agent.pki.issuers.base import IssueRequest
    from agent.pki.issuers.localca import LocalCAIssuer
    from agent.pki.keys import PrivateKey

    target = tmp_path / "ca"
    assert main(["ca", "init", str(target)]) == 0
    ca = LocalCAIssuer(target)
    bundle = ca.issue(
        IssueRequest(
            csr_pem=make_csr(PrivateKey.generate(), ["r.example.com"]), names=("r.example.com",)
        )
    )
    cert = tmp_path / "cert.pem"
    cert.write_text(bundle.cert_pem)
    capsys.readouterr()
    assert main(["ca", "revoke", str(target), str(cert)]) == 0
    assert f"revoked serial {bundle.backend_id}" in capsys.readouterr().out
    assert list(ca.revoked()) == [bundle.backend_id]
