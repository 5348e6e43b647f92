"""Certificates from the localca and selfsigned backends pass a real ``openssl verify``."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.cli import main
from agent.pki.checks import check_bundle
from agent.pki.csr import make_csr
from agent.pki.issuers.base import REGISTRY, CertBundle, IssueRequest
from agent.pki.keys import PrivateKey, write_key_file

pytestmark = pytest.mark.integration

NAMES = ("origin1.example.com", "www.origin1.example.com", "127.0.1.1")


def _openssl_verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "verify", *args], capture_output=True, text=True, timeout=30, check=False
    )


def _issue_from_config(config: dict[str, str], key: PrivateKey) -> tuple[str, CertBundle]:
    issuer = REGISTRY[config["backend"]]().from_config(config)
    csr = make_csr(key, NAMES)
    key_pem = key.pem().reveal() if config["backend"] == "selfsigned" else None
    request = IssueRequest(csr_pem=csr, names=NAMES, key_pem=key_pem)
    return csr, issuer.issue(request)


@pytest.mark.parametrize("intermediate", [False, True], ids=["root-only", "with-intermediate"])
def test_localca_certificate_verifies_with_openssl(
    tmp_path: Path, intermediate: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_dir = tmp_path / "ca"
    argv = ["ca", "init", str(ca_dir)] + (["--intermediate"] if intermediate else [])
    assert main(argv) == 0
    assert str(ca_dir / "root.pem") in capsys.readouterr().out

    key = PrivateKey.generate()
    csr, bundle = _issue_from_config({"backend": "localca", "dir": str(ca_dir)}, key)
    leaf, chain = tmp_path / "leaf.pem", tmp_path / "chain.pem"
    leaf.write_text(bundle.cert_pem)
    chain.write_text(bundle.chain_pem)
    untrusted = ["-untrusted", str(chain)] if intermediate else []
    result = _openssl_verify(
        "-CAfile",
        str(ca_dir / "root.pem"),
        *untrusted,
        "-purpose",
        "sslserver",
        "-verify_hostname",
        NAMES[1],
        str(leaf),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{leaf}: OK"
    ip = _openssl_verify(
        "-CAfile", str(ca_dir / "root.pem"), *untrusted, "-verify_ip", "127.0.1.1", str(leaf)
    )
    assert ip.returncode == 0, ip.stderr

    # Without the intermediate a chained certificate must not verify: the check is real.
    if intermediate:
        bare = _openssl_verify("-CAfile", str(ca_dir / "root.pem"), str(leaf))
        assert bare.returncode != 0

    # The key written 0600 matches the served certificate, as openssl sees it.
    key_file = write_key_file(tmp_path / "key.pem", key.pem())
    cert_pub = subprocess.run(
        ["openssl", "x509", "-in", str(leaf), "-noout", "-pubkey"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    key_pub = subprocess.run(
        ["openssl", "pkey", "-in", str(key_file), "-pubout"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert cert_pub == key_pub


def test_revoked_localca_certificate_fails_openssl_crl_check(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    assert main(["ca", "init", str(ca_dir), "--intermediate"]) == 0
    _, bundle = _issue_from_config(
        {"backend": "localca", "dir": str(ca_dir)}, PrivateKey.generate()
    )
    leaf, chain = tmp_path / "leaf.pem", tmp_path / "chain.pem"
    leaf.write_text(bundle.cert_pem)
    chain.write_text(bundle.chain_pem)
    assert main(["ca", "revoke", str(ca_dir), str(leaf)]) == 0
    result = _openssl_verify(
        "-crl_check",
        "-CRLfile",
        str(ca_dir / "crl.pem"),
        "-CAfile",
        str(ca_dir / "root.pem"),
        "-untrusted",
        str(chain),
        str(leaf),
    )
    assert result.returncode != 0
    assert "certificate revoked" in result.stdout + result.stderr


def test_selfsigned_certificate_verifies_against_itself(tmp_path: Path) -> None:
    key = PrivateKey.generate("rsa2048")
    csr, bundle = _issue_from_config({"backend": "selfsigned"}, key)
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(bundle.cert_pem)
    result = _openssl_verify("-CAfile", str(leaf), "-verify_hostname", NAMES[0], str(leaf))
    assert result.returncode == 0, result.stderr
    info = check_bundle(
        bundle,
        csr_pem=csr,
        names=NAMES,
        now=datetime.now(UTC),
        backend="selfsigned",
        trust_anchors=bundle.cert_pem,
    )
    assert info.key_type == "rsa2048"


def test_ca_init_as_a_subprocess_makes_private_keys_and_refuses_a_second_time(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    argv = [sys.executable, "-m", "agent", "ca", "init", str(tmp_path / "ca"), "--intermediate"]
    first = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert first.returncode == 0, first.stderr
    assert f"(the edge must trust this): {tmp_path / 'ca' / 'root.pem'}" in first.stdout
    assert stat.S_IMODE((tmp_path / "ca" / "root.key").stat().st_mode) == 0o600
    second = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert second.returncode == 1
    assert second.stderr.count("\n") == 1 and "refusing to overwrite" in second.stderr
    assert "Traceback" not in second.stderr
