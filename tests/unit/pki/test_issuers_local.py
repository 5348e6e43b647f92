"""The selfsigned and localca backends, ``ca init`` files, and revocation."""

from __future__ import annotations

import stat
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.errors import IssuerError
from agent.pki.checks import check_bundle
from agent.pki.csr import make_csr
from agent.pki.inspect import inspect_certificate, load_certificates
from agent.pki.issuers.base import REGISTRY, IssueRequest
from agent.pki.issuers.localca import LocalCAIssuer, init_ca
from agent.pki.issuers.selfsigned import SelfSignedIssuer
from agent.pki.keys import PrivateKey

from .conftest import NOW

NAMES = ("origin1.example.com", "127.0.1.1")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_both_backends_are_in_the_registry() -> None:
    assert REGISTRY["selfsigned"]() is SelfSignedIssuer
    assert REGISTRY["localca"]() is LocalCAIssuer
    assert LocalCAIssuer.can_revoke and not SelfSignedIssuer.can_revoke


def test_selfsigned_signs_with_the_key_it_certifies(key: PrivateKey) -> None:
    csr = make_csr(key, NAMES)
    issuer = SelfSignedIssuer.from_config({"backend": "selfsigned"})
    bundle = issuer.issue(IssueRequest(csr_pem=csr, names=NAMES, key_pem=key.pem().reveal()))
    info = check_bundle(
        bundle,
        csr_pem=csr,
        names=NAMES,
        now=datetime.now(NOW.tzinfo),
        backend="selfsigned",
        trust_anchors=bundle.cert_pem,
    )
    assert info.self_issued and bundle.chain_pem == ""
    assert bundle.backend_id == info.serial


def test_selfsigned_needs_the_matching_key(key: PrivateKey) -> None:
    csr = make_csr(key, NAMES)
    with pytest.raises(IssuerError) as exc:
        SelfSignedIssuer().issue(IssueRequest(csr_pem=csr, names=NAMES))
    assert str(exc.value) == "issuer selfsigned: needs the private key (IssueRequest.key_pem)"
    other = PrivateKey.generate().pem().reveal()
    with pytest.raises(IssuerError) as exc:
        SelfSignedIssuer().issue(IssueRequest(csr_pem=csr, names=NAMES, key_pem=other))
    assert str(exc.value) == "issuer selfsigned: the key given is not the CSR's key"


def test_ca_init_writes_keys_0600_in_a_0700_dir(tmp_path: Path) -> None:
    paths = init_ca(tmp_path / "ca", intermediate=True, now=NOW)
    assert _mode(paths.dir) == 0o700
    assert _mode(paths.root_key) == 0o600
    assert _mode(paths.intermediate_key) == 0o600
    assert _mode(paths.root_cert) == 0o644
    root = inspect_certificate(paths.root_cert.read_text())
    assert root.is_ca and root.common_name == "origin-agent local CA"
    assert root.not_after == NOW + timedelta(days=3650)


def test_ca_init_refuses_to_overwrite_a_ca(tmp_path: Path) -> None:
    paths = init_ca(tmp_path / "ca", now=NOW)
    before = paths.root_key.read_bytes()
    with pytest.raises(IssuerError) as exc:
        init_ca(tmp_path / "ca", intermediate=True, now=NOW)
    assert str(exc.value) == (
        f"issuer localca: {paths.dir} already holds a CA (root.pem); refusing to overwrite it; "
        "choose another directory"
    )
    assert paths.root_key.read_bytes() == before
    assert not paths.intermediate_cert.exists()


@pytest.mark.parametrize("intermediate", [False, True])
def test_localca_signs_a_server_certificate_for_the_names(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey, intermediate: bool
) -> None:
    ca = make_ca(intermediate=intermediate)
    csr = make_csr(key, ["ignored-csr-name.example.com"])
    bundle = ca.issue(IssueRequest(csr_pem=csr, names=NAMES, validity=timedelta(days=10)))
    info = check_bundle(
        bundle, csr_pem=csr, names=NAMES, now=NOW, backend="localca", trust_anchors=[ca.root]
    )
    if intermediate:
        assert load_certificates(bundle.chain_pem) == [
            load_certificates(ca.paths.intermediate_cert.read_text())[0]
        ]
    else:
        assert bundle.chain_pem == ""
    assert info.not_after == NOW + timedelta(days=10)
    leaf = load_certificates(bundle.cert_pem)[0]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert bundle.backend_id == info.serial


def test_localca_validity_stops_at_the_ca_expiry(tmp_path: Path, key: PrivateKey) -> None:
    init_ca(tmp_path / "ca", days=20, now=NOW)
    ca = LocalCAIssuer(tmp_path / "ca", clock=lambda: NOW)
    bundle = ca.issue(
        IssueRequest(csr_pem=make_csr(key, NAMES), names=NAMES, validity=timedelta(days=90))
    )
    assert inspect_certificate(bundle.cert_pem).not_after == NOW + timedelta(days=20)


def test_localca_config_is_validated(tmp_path: Path) -> None:
    with pytest.raises(IssuerError) as exc:
        LocalCAIssuer.from_config({"backend": "localca", "dir": str(tmp_path), "dri": "x"})
    assert str(exc.value) == "issuer localca: unknown key 'dri'; accepted keys: backend, dir"
    with pytest.raises(IssuerError) as exc:
        LocalCAIssuer.from_config({"backend": "localca"})
    assert str(exc.value).startswith("issuer localca: missing 'dir' (the CA directory)")
    with pytest.raises(IssuerError) as exc:
        LocalCAIssuer.from_config({"backend": "localca", "dir": str(tmp_path / "none")})
    assert str(exc.value) == (
        f"issuer localca: no CA in {tmp_path / 'none'} (missing root.pem); "
        f"run 'origin-agent ca init {tmp_path / 'none'}'"
    )


def test_localca_refuses_a_key_readable_by_others(tmp_path: Path) -> None:
    paths = init_ca(tmp_path / "ca", now=NOW)
    paths.root_key.chmod(0o644)
    with pytest.raises(IssuerError) as exc:
        LocalCAIssuer.from_config({"backend": "localca", "dir": str(paths.dir)})
    assert str(exc.value) == (
        f"issuer localca: CA key {paths.root_key} is readable by others (mode 0644); "
        f"chmod 600 {paths.root_key}"
    )


def test_localca_with_intermediate_issues_without_the_root_key(
    tmp_path: Path, key: PrivateKey
) -> None:
    paths = init_ca(tmp_path / "ca", intermediate=True, now=NOW)
    paths.root_key.unlink()  # moved offline
    ca = LocalCAIssuer(paths.dir, clock=lambda: NOW)
    csr = make_csr(key, NAMES)
    bundle = ca.issue(IssueRequest(csr_pem=csr, names=NAMES))
    check_bundle(
        bundle,
        csr_pem=csr,
        names=NAMES,
        now=NOW,
        backend="localca",
        trust_anchors=paths.root_cert.read_text(),
    )


def test_localca_records_revocations_and_writes_a_crl(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    ca = make_ca(intermediate=True)
    bundle = ca.issue(IssueRequest(csr_pem=make_csr(key, NAMES), names=NAMES))
    ca.revoke(bundle.cert_pem, bundle.backend_id)
    ca.revoke(bundle.cert_pem)  # twice is harmless
    assert list(ca.revoked()) == [bundle.backend_id]
    crl = x509.load_pem_x509_crl(ca.paths.crl.read_bytes())
    assert crl.is_signature_valid(ca.issuing_cert.public_key())  # type: ignore[arg-type]
    serial = int(bundle.backend_id, 16)
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert ca.paths.revoked.read_text().startswith(f"{bundle.backend_id} ")


def test_localca_refuses_to_revoke_a_foreign_certificate(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    ca, other = make_ca(), make_ca()
    foreign = other.issue(IssueRequest(csr_pem=make_csr(key, NAMES), names=NAMES))
    with pytest.raises(IssuerError) as exc:
        ca.revoke(foreign.cert_pem)
    assert str(exc.value) == "issuer localca: revoke: certificate was not issued by this CA"
    assert ca.revoked() == {}


def test_localca_rejects_a_bad_csr_and_bad_names(
    make_ca: Callable[..., LocalCAIssuer], key: PrivateKey
) -> None:
    ca = make_ca()
    with pytest.raises(IssuerError) as exc:
        ca.issue(IssueRequest(csr_pem="junk", names=NAMES))
    assert str(exc.value) == "issuer localca: not a PEM certificate signing request"
    with pytest.raises(IssuerError) as exc:
        ca.issue(IssueRequest(csr_pem=make_csr(key, NAMES), names=("ok.example.com", "x;y")))
    assert str(exc.value) == "issuer localca: invalid hostname 'x;y'"
