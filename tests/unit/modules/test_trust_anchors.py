"""Which roots an issuer adds to the edge's default trust: its config's ``trust:`` (one file or
several, relative to the inventory), else the backend's own root; read once per run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.errors import IssuerError
from agent.modules.tls import services
from agent.pki.issuers.localca import init_ca
from agent.pki.trust import edge_trust
from tests.tlscerts import make_ca


@pytest.fixture(autouse=True)
def fresh_services(tmp_path: Path) -> Iterator[None]:
    services.configure(state_dir=str(tmp_path / "state"), base_dir=str(tmp_path))
    yield
    services.configure(state_dir=None, base_dir=".")


def _anchors(config: dict[str, object]) -> str:
    return services.trust_anchors(config, services.issuer(config, where="web01"))


def test_without_trust_the_local_ca_adds_its_root(tmp_path: Path) -> None:
    paths = init_ca(tmp_path / "ca")
    text = _anchors({"backend": "localca", "dir": "ca"})
    assert text == paths.root_cert.read_text()


def test_trust_files_relative_to_the_inventory_are_read_once_per_run(tmp_path: Path) -> None:
    one, two = make_ca("One"), make_ca("Two")
    (tmp_path / "one.pem").write_text(one.cert_pem)
    (tmp_path / "two.pem").write_text(two.cert_pem)
    config = {"backend": "selfsigned", "trust": ["one.pem", "two.pem"]}
    text = _anchors(config)
    assert one.cert_pem in text and two.cert_pem in text
    assert one.cert in edge_trust(text) and two.cert in edge_trust(text)
    (tmp_path / "one.pem").unlink()  # a second host of the same issuer: not read again
    assert _anchors(config) == text


def test_an_unreadable_trust_file_is_one_line_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(IssuerError) as err:
        _anchors({"backend": "selfsigned", "trust": "missing.pem"})
    assert str(err.value) == (
        f"issuer selfsigned: cannot read trust anchors {tmp_path / 'missing.pem'}: "
        "No such file or directory"
    )


def test_a_trust_file_without_certificates_is_one_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    with pytest.raises(IssuerError) as err:
        _anchors({"backend": "selfsigned", "trust": "junk.pem"})
    assert str(err.value) == (
        f"issuer selfsigned: trust anchors {tmp_path / 'junk.pem'}: no PEM certificate found"
    )


def test_trust_must_name_files() -> None:
    with pytest.raises(IssuerError, match="'trust' must be a file or a list of files"):
        _anchors({"backend": "selfsigned", "trust": {"file": "x.pem"}})
