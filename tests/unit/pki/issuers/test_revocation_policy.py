"""One replacement policy across backends (see ``Issuer.revoke``): which backends can revoke
what they replaced, and that the Origin CA revokes exactly the replaced certificate."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent.errors import IssuerError
from agent.pki.csr import make_csr
from agent.pki.issuers.base import REGISTRY, IssueRequest
from agent.pki.issuers.cfssl import CfsslIssuer
from agent.pki.issuers.cloudflare import CloudflareConfig, CloudflareIssuer
from agent.pki.issuers.selfsigned import SelfSignedIssuer
from agent.pki.keys import PrivateKey
from agent.secret import Secret
from tests.emulators.cloudflare import CloudflareEmulator

NAMES = ("example.test",)


@pytest.mark.parametrize(
    "backend, can_revoke",
    [("selfsigned", False), ("localca", True), ("acme", True), ("cloudflare", True)],
)
def test_each_backend_says_whether_it_revokes_what_it_replaced(
    backend: str, can_revoke: bool
) -> None:
    assert REGISTRY[backend]().can_revoke is can_revoke


def test_cfssl_revokes_only_when_the_issuer_enables_it() -> None:
    url = "http://127.0.0.1:9"  # never contacted
    assert CfsslIssuer.from_config({"url": url, "revoke": True}).can_revoke is True
    plain = CfsslIssuer.from_config({"url": url})
    assert plain.can_revoke is False
    with pytest.raises(IssuerError, match="revocation is not enabled"):
        plain.revoke("")


def test_selfsigned_has_nothing_to_revoke() -> None:
    with pytest.raises(IssuerError, match="cannot revoke"):
        SelfSignedIssuer().revoke("")


def test_origin_ca_deletes_the_replaced_certificate_and_keeps_the_new_one() -> None:
    with CloudflareEmulator(tls=False) as cf:
        config = CloudflareConfig(
            credential=Secret(cf.token), base_url=cf.base_url, zone_id=cf.zone_id
        )
        issuer = CloudflareIssuer(config)

        def issue() -> str:
            csr = make_csr(PrivateKey.generate("ec256"), NAMES)
            request = IssueRequest(csr_pem=csr, names=NAMES, validity=timedelta(days=7))
            return issuer.issue(request).cert_pem

        old, new = issue(), issue()
        issuer.revoke(old)  # no backend id: the id is the serial number, in decimal
        method, path, _ = cf.seen[-1]
        assert method == "DELETE" and path.startswith("/client/v4/certificates/")
        listed = [c["certificate"] for c in issuer.certificates()]
        assert listed == [new]
        with pytest.raises(IssuerError, match=r"Certificate not found \(code 1003\)"):
            issuer.revoke("", backend_id="12345")
