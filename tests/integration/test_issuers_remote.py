"""The remote issuer backends against real CAs on loopback: Debian's pebble (ACME), ``cfssl
serve``, and the Cloudflare Origin CA emulator. Each issues for real and the chain is verified;
each failure mode ends in one IssuerError line carrying the CA's own words."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from agent.errors import CommandError, IssuerError
from agent.pki.issuers.acme import AcmeIssuer, MemoryAccountStore
from agent.pki.issuers.base import REGISTRY, IssueRequest
from agent.pki.issuers.cfssl import CfsslIssuer
from agent.pki.issuers.cloudflare import CloudflareIssuer
from agent.state.records import AcmeAccount
from agent.state.store import Store
from tests.emulators.cloudflare import CloudflareEmulator
from tests.integration.cas import (
    CfsslServer,
    MultirootCA,
    Pebble,
    WebrootPublisher,
    WebrootResponder,
    free_port,
    make_csr,
    verify_chain,
)
from tests.tlscerts import make_leaf

pytestmark = pytest.mark.integration

RESPONDER = "127.0.2.77"  # outside the lab's 127.0.1.0/24
FAST = {"retries": 2, "backoff": 0.01}


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and text.startswith("issuer "), text
    return text


# --- ACME / pebble ----------------------------------------------------------------------


class PebbleEnv:
    def __init__(self, pebble: Pebble, webroot: Path) -> None:
        self.pebble, self.webroot = pebble, webroot
        self.root_pem = pebble.root_pem()

    def config(self, **extra: Any) -> dict[str, Any]:
        return {
            "backend": "acme",
            "directory": self.pebble.directory,
            "ca_bundle": str(self.pebble.tls_ca),
            "email": "ops@example.test",
            "timeout": 60,
            **extra,
        }


@pytest.fixture(scope="module")
def pebble_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PebbleEnv]:
    base = tmp_path_factory.mktemp("pebble")
    webroot = base / "webroot"
    webroot.mkdir()
    port = free_port(RESPONDER)
    responder = WebrootResponder(webroot, RESPONDER, port)
    try:
        pebble = Pebble(base / "ca", RESPONDER, port)
        try:
            yield PebbleEnv(pebble, webroot)
        finally:
            pebble.stop()
    finally:
        responder.stop()


class SilentPublisher(WebrootPublisher):
    """Claims to publish but serves the wrong content, so validation must fail."""

    def publish(self, path: str, content: str) -> None:
        super().publish(path, "not-the-key-authorization")


def test_acme_issues_a_certificate_chaining_to_pebble_root(
    pebble_env: PebbleEnv, tmp_path: Path
) -> None:
    names = ("origin1.example.test", "www.origin1.example.test")
    csr, _ = make_csr(list(names))
    publisher = WebrootPublisher(pebble_env.webroot)
    with Store(tmp_path / "state") as store:
        issuer = REGISTRY["acme"]().from_config(pebble_env.config(), state=store)
        bundle = issuer.issue(IssueRequest(csr_pem=csr, names=names, publisher=publisher))
        account = store.acme_account(pebble_env.pebble.directory)
    assert bundle.backend == "acme" and "/cert" in bundle.backend_id
    assert len(x509.load_pem_x509_certificates(bundle.chain_pem.encode())) == 1
    for name in names:
        verify_chain(bundle.cert_pem, bundle.chain_pem, pebble_env.root_pem, name)
    # every challenge published was taken away again, and nothing is left in the webroot
    assert sorted(publisher.published) == sorted(publisher.unpublished)
    assert not list((pebble_env.webroot / ".well-known" / "acme-challenge").iterdir())
    assert account is not None and account.account_url.startswith("https://127.0.0.1:")
    assert "PRIVATE KEY" in account.account_key.reveal()
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_acme_account_key_is_made_once_and_reused_from_state(pebble_env: PebbleEnv) -> None:
    store = MemoryAccountStore()
    names = ("reuse.example.test",)
    csr, _ = make_csr(list(names))
    first = AcmeIssuer.from_config(pebble_env.config(), state=store)
    first.issue(
        IssueRequest(csr_pem=csr, names=names, publisher=WebrootPublisher(pebble_env.webroot))
    )
    saved = store.acme_account(pebble_env.pebble.directory)
    second = AcmeIssuer.from_config(pebble_env.config(), state=store)
    second.issue(
        IssueRequest(csr_pem=csr, names=names, publisher=WebrootPublisher(pebble_env.webroot))
    )
    again = store.acme_account(pebble_env.pebble.directory)
    assert saved is not None and again is not None
    assert again.account_url == saved.account_url
    assert again.account_key == saved.account_key


class CountingStore(MemoryAccountStore):
    def __init__(self) -> None:
        super().__init__()
        self.saves = 0

    def save_acme_account(self, account: AcmeAccount) -> None:
        self.saves += 1
        super().save_acme_account(account)


def test_acme_one_issuer_serves_concurrent_hosts_with_one_account(pebble_env: PebbleEnv) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = CountingStore()
    issuer = AcmeIssuer.from_config(pebble_env.config(), state=store)

    def one(index: int) -> str:
        names = (f"host{index}.example.test",)
        csr, _ = make_csr(list(names))
        bundle = issuer.issue(
            IssueRequest(csr_pem=csr, names=names, publisher=WebrootPublisher(pebble_env.webroot))
        )
        verify_chain(bundle.cert_pem, bundle.chain_pem, pebble_env.root_pem, names[0])
        return bundle.backend_id

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(one, range(4)))
    assert len(set(ids)) == 4
    assert store.saves == 1


def test_acme_revoke_is_recorded_by_the_ca(pebble_env: PebbleEnv) -> None:
    names = ("revoke.example.test",)
    csr, _ = make_csr(list(names))
    issuer = AcmeIssuer.from_config(pebble_env.config())
    bundle = issuer.issue(
        IssueRequest(csr_pem=csr, names=names, publisher=WebrootPublisher(pebble_env.webroot))
    )
    issuer.revoke(bundle.cert_pem, bundle.backend_id)
    serial = x509.load_pem_x509_certificate(bundle.cert_pem.encode()).serial_number
    assert pebble_env.pebble.cert_status(serial)["Status"] == "Revoked"
    with pytest.raises(
        IssuerError,
        match=r"revoke: Certificate has already been revoked\. "
        r"\(alreadyRevoked\)",
    ):
        issuer.revoke(bundle.cert_pem)


def test_acme_failed_validation_shows_the_ca_problem_and_unpublishes(pebble_env: PebbleEnv) -> None:
    names = ("wrong.example.test",)
    csr, _ = make_csr(list(names))
    publisher = SilentPublisher(pebble_env.webroot)
    issuer = AcmeIssuer.from_config(pebble_env.config())
    with pytest.raises(IssuerError) as err:
        issuer.issue(IssueRequest(csr_pem=csr, names=names, publisher=publisher))
    line = _one_line(err.value)
    assert "challenge validation failed: wrong.example.test:" in line
    assert "unauthorized" in line
    assert publisher.published and publisher.unpublished == publisher.published


class BrokenPublisher(WebrootPublisher):
    """The second publish fails, as an SSH write to an origin might."""

    def publish(self, path: str, content: str) -> None:
        if self.published:
            raise CommandError("cannot write challenge", host="origin9", exit_code=1)
        super().publish(path, content)


def test_acme_publisher_failure_propagates_and_earlier_challenges_are_removed(
    pebble_env: PebbleEnv,
) -> None:
    names = ("p1.example.test", "p2.example.test")
    csr, _ = make_csr(list(names))
    publisher = BrokenPublisher(pebble_env.webroot)
    with pytest.raises(CommandError, match="origin9: cannot write challenge"):
        AcmeIssuer.from_config(pebble_env.config(), state=MemoryAccountStore()).issue(
            IssueRequest(csr_pem=csr, names=names, publisher=publisher)
        )
    assert len(publisher.published) == 1 and publisher.unpublished == publisher.published
    assert not (pebble_env.webroot / publisher.published[0].lstrip("/")).exists()


def test_acme_wildcard_is_refused_without_dns01(pebble_env: PebbleEnv) -> None:
    names = ("*.wild.example.test",)
    csr, _ = make_csr(list(names))
    publisher = WebrootPublisher(pebble_env.webroot)
    with pytest.raises(IssuerError, match=r"no http-01 challenge for \*\.wild\.example\.test"):
        AcmeIssuer.from_config(pebble_env.config()).issue(
            IssueRequest(csr_pem=csr, names=names, publisher=publisher)
        )
    assert publisher.published == []


def test_acme_untrusted_server_certificate_is_a_tls_failure(pebble_env: PebbleEnv) -> None:
    config = pebble_env.config()
    del config["ca_bundle"]
    csr, _ = make_csr(["tls.example.test"])
    with pytest.raises(IssuerError) as err:
        AcmeIssuer.from_config(config).issue(
            IssueRequest(
                csr_pem=csr,
                names=("tls.example.test",),
                publisher=WebrootPublisher(pebble_env.webroot),
            )
        )
    assert "directory: TLS failure: certificate verify failed" in _one_line(err.value)


def test_acme_unreachable_directory_retries_then_fails() -> None:
    port = free_port()
    csr, _ = make_csr(["down.example.test"])
    issuer = AcmeIssuer.from_config({"directory": f"http://127.0.0.1:{port}/dir", **FAST})
    started = time.monotonic()
    with pytest.raises(IssuerError) as err:
        issuer.issue(
            IssueRequest(
                csr_pem=csr,
                names=("down.example.test",),
                publisher=WebrootPublisher(Path("/nonexistent")),
            )
        )
    assert time.monotonic() - started < 5
    assert _one_line(err.value) == (
        "issuer acme: directory: unreachable after 3 attempts (Connection refused); "
        "check that the CA is up and the URL is right"
    )


@pytest.mark.parametrize(
    "status, body, content_type, expected",
    [
        (
            500,
            b"<html>Internal error</html>",
            "text/html",
            "unexpected HTTP 500 answer: '<html>Internal error</html>'",
        ),
        (200, b"\x00\x01garbage", "text/html", "Unexpected response Content-Type"),
        (200, b'{"hello": 1}', "application/json", "is not an ACME directory (no newNonce"),
        (200, b"[1]", "application/json", "malformed answer"),
    ],
)
def test_acme_garbage_directory_answer_is_one_clear_line(
    status: int, body: bytes, content_type: str, expected: str
) -> None:
    csr, _ = make_csr(["garbage.example.test"])
    with CloudflareEmulator(tls=False) as fake:
        fake.fail_next(status, body, count=10, content_type=content_type)
        issuer = AcmeIssuer.from_config({"directory": fake.base_url + "/dir", **FAST})
        with pytest.raises(IssuerError) as err:
            issuer.issue(
                IssueRequest(
                    csr_pem=csr,
                    names=("garbage.example.test",),
                    publisher=WebrootPublisher(Path("/nonexistent")),
                )
            )
    line = _one_line(err.value)
    assert line.startswith("issuer acme: directory: ") and expected in line


# --- cfssl ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cfssl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CfsslServer]:
    server = CfsslServer(tmp_path_factory.mktemp("cfssl"))
    try:
        yield server
    finally:
        server.stop()


NAMES = ("origin2.example.test", "www.origin2.example.test")


def test_cfssl_sign_returns_leaf_and_intermediate_chain(cfssl: CfsslServer) -> None:
    csr, _ = make_csr(list(NAMES))
    issuer = REGISTRY["cfssl"]().from_config(
        {"backend": "cfssl", "url": cfssl.url, "profile": "server"}
    )
    bundle = issuer.issue(IssueRequest(csr_pem=csr, names=NAMES))
    assert bundle.chain_pem.strip() == cfssl.signer.cert_pem.strip()
    for name in NAMES:
        verify_chain(bundle.cert_pem, bundle.chain_pem, cfssl.root.cert_pem, name)
    leaf = x509.load_pem_x509_certificate(bundle.cert_pem.encode())
    assert bundle.backend_id == format(leaf.serial_number, "x")
    assert issuer.can_revoke is False


def test_cfssl_revokes_in_the_servers_database_when_enabled(cfssl: CfsslServer) -> None:
    csr, _ = make_csr(list(NAMES))
    issuer = CfsslIssuer.from_config({"url": cfssl.url, "profile": "server", "revoke": True})
    assert issuer.can_revoke is True
    bundle = issuer.issue(IssueRequest(csr_pem=csr, names=NAMES))
    serial = str(x509.load_pem_x509_certificate(bundle.cert_pem.encode()).serial_number)

    def row() -> tuple[str, int | None]:
        with sqlite3.connect(cfssl.db) as db:
            found = db.execute(
                "SELECT status, reason FROM certificates WHERE serial_number = ?", (serial,)
            ).fetchall()
        assert len(found) == 1
        return found[0][0], found[0][1]

    assert row() == ("good", 0)
    issuer.revoke(bundle.cert_pem + bundle.chain_pem, bundle.backend_id)
    assert row() == ("revoked", 4)  # RFC 5280 superseded
    stranger = make_leaf(["x.example.test"], start=dt.datetime.now(dt.UTC), days=1)
    with pytest.raises(IssuerError, match=r"revoke: CA refused: .*certificate not found"):
        issuer.revoke(stranger.cert_pem)
    plain = CfsslIssuer.from_config({"url": cfssl.url, "profile": "server"})
    with pytest.raises(IssuerError, match="revocation is not enabled"):
        plain.revoke(bundle.cert_pem)
    with pytest.raises(IssuerError, match="revoke must be true or false"):
        CfsslIssuer.from_config({"url": cfssl.url, "revoke": "yes"})


def test_cfssl_authsign_with_hmac_key_from_file(cfssl: CfsslServer) -> None:
    csr, _ = make_csr(list(NAMES))
    issuer = CfsslIssuer.from_config(
        {"url": cfssl.url, "profile": "server-auth", "auth_key_file": str(cfssl.auth_key_file)}
    )
    bundle = issuer.issue(IssueRequest(csr_pem=csr, names=NAMES))
    verify_chain(bundle.cert_pem, bundle.chain_pem, cfssl.root.cert_pem, NAMES[1])


def test_cfssl_wrong_hmac_key_is_refused_with_cas_message(
    cfssl: CfsslServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CFSSL_TEST_KEY", "00" * 16)
    csr, _ = make_csr(list(NAMES))
    issuer = CfsslIssuer.from_config(
        {"url": cfssl.url, "profile": "server-auth", "auth_key_env": "CFSSL_TEST_KEY"}
    )
    with pytest.raises(IssuerError) as err:
        issuer.issue(IssueRequest(csr_pem=csr, names=NAMES))
    assert _one_line(err.value) == "issuer cfssl: authsign: CA refused: invalid token (code 400)"


@pytest.mark.parametrize(
    "profile, message",
    [
        ("restricted", "Request does not match policy whitelist (code 5500)"),
        ("server-auth", "authentication required (code 400)"),
    ],
)
def test_cfssl_policy_refusal_shows_cas_message(
    cfssl: CfsslServer, profile: str, message: str
) -> None:
    csr, _ = make_csr(list(NAMES))
    with pytest.raises(IssuerError) as err:
        CfsslIssuer.from_config({"url": cfssl.url, "profile": profile}).issue(
            IssueRequest(csr_pem=csr, names=NAMES)
        )
    assert _one_line(err.value) == f"issuer cfssl: sign: CA refused: {message}"


@pytest.fixture(scope="module")
def multiroot(
    cfssl: CfsslServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MultirootCA]:
    server = MultirootCA(cfssl, tmp_path_factory.mktemp("multirootca"))
    try:
        yield server
    finally:
        server.stop()


def test_multirootca_authsign_with_label(cfssl: CfsslServer, multiroot: MultirootCA) -> None:
    csr, _ = make_csr(list(NAMES))
    bundle = CfsslIssuer.from_config(
        {
            "url": multiroot.url,
            "profile": "server-auth",
            "label": "primary",
            "auth_key_file": str(cfssl.auth_key_file),
        }
    ).issue(IssueRequest(csr_pem=csr, names=NAMES))
    assert bundle.chain_pem.strip() == cfssl.signer.cert_pem.strip()
    verify_chain(bundle.cert_pem, bundle.chain_pem, cfssl.root.cert_pem, NAMES[0])


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"profile": "server-auth", "label": "nope"}, "authsign: CA refused: bad request (code 1)"),
        ({"profile": "server"}, "authsign: CA refused: authorisation required (code 1)"),
    ],
)
def test_multirootca_refusals_show_its_message(
    cfssl: CfsslServer, multiroot: MultirootCA, extra: dict[str, str], message: str
) -> None:
    csr, _ = make_csr(list(NAMES))
    with pytest.raises(IssuerError) as err:
        CfsslIssuer.from_config(
            {"url": multiroot.url, "auth_key_file": str(cfssl.auth_key_file), **extra}
        ).issue(IssueRequest(csr_pem=csr, names=NAMES))
    assert _one_line(err.value) == f"issuer cfssl: {message}"


def test_cfssl_unreachable_retries_then_fails() -> None:
    csr, _ = make_csr(list(NAMES))
    issuer = CfsslIssuer.from_config({"url": f"http://127.0.0.1:{free_port()}", **FAST})
    with pytest.raises(
        IssuerError,
        match=r"^issuer cfssl: sign: unreachable after 3 attempts "
        r"\(Connection refused\)",
    ):
        issuer.issue(IssueRequest(csr_pem=csr, names=NAMES))


def test_cfssl_garbage_answer_is_one_clear_line() -> None:
    csr, _ = make_csr(list(NAMES))
    with CloudflareEmulator(tls=False) as fake:
        url = fake.base_url.removesuffix("/client/v4")
        fake.fail_next(502, b"<html>Bad gateway</html>", count=3, content_type="text/html")
        with pytest.raises(IssuerError) as err:
            CfsslIssuer.from_config({"url": url, **FAST}).issue(
                IssueRequest(csr_pem=csr, names=NAMES)
            )
        assert _one_line(err.value) == (
            "issuer cfssl: sign: HTTP 502 answer is not JSON: '<html>Bad gateway</html>'"
        )
        fake.fail_next(200, {"certificate": "nope"})
        with pytest.raises(IssuerError, match="sign: HTTP 200 answer is not a CFSSL envelope"):
            CfsslIssuer.from_config({"url": url, **FAST}).issue(
                IssueRequest(csr_pem=csr, names=NAMES)
            )


# --- Cloudflare Origin CA (emulator) ----------------------------------------------------


@pytest.fixture(scope="module")
def cloudflare() -> Iterator[CloudflareEmulator]:
    with CloudflareEmulator(zones={"023e105f4ecef8ad9ca31a8372d0c353": "example.test"}) as cf:
        yield cf


@pytest.fixture
def cf(
    cloudflare: CloudflareEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CloudflareEmulator]:
    monkeypatch.setenv("CF_TEST_TOKEN", cloudflare.token)
    cloudflare.seen.clear()
    yield cloudflare
    cloudflare.clear_failures()


def _cf_config(cf: CloudflareEmulator, **extra: Any) -> dict[str, Any]:
    return {
        "backend": "cloudflare",
        "base_url": cf.base_url,
        "token_env": "CF_TEST_TOKEN",
        "ca_bundle": cf.ca_bundle,
        "zone_id": cf.zone_id,
        **FAST,
        **extra,
    }


CF_NAMES = ("example.test", "*.example.test")


@pytest.mark.parametrize(
    "rsa_key, root, request_type", [(False, "ecc", "origin-ecc"), (True, "rsa", "origin-rsa")]
)
def test_cloudflare_issues_origin_ca_certificate(
    cf: CloudflareEmulator, rsa_key: bool, root: str, request_type: str
) -> None:
    csr, _ = make_csr(list(CF_NAMES), rsa_key=rsa_key)
    issuer = REGISTRY["cloudflare"]().from_config(_cf_config(cf))
    bundle = issuer.issue(IssueRequest(csr_pem=csr, names=CF_NAMES))
    assert bundle.chain_pem == ""
    verify_chain(bundle.cert_pem, "", cf.root_pem(root), "www.example.test")
    verify_chain(bundle.cert_pem, "", cf.root_pem(root), "example.test")
    method, path, headers = cf.seen[-1]
    assert (method, path) == ("POST", "/client/v4/certificates")
    assert headers["Authorization"] == f"Bearer {cf.token}"
    record = cf.certificates[bundle.backend_id]
    assert record["request_type"] == request_type and record["requested_validity"] == 5475


def test_cloudflare_origin_ca_key_uses_the_service_key_header(
    cf: CloudflareEmulator, tmp_path: Path
) -> None:
    key_file = tmp_path / "origin-ca.key"
    key_file.write_text(cf.service_key + "\n")  # trailing newline must be stripped
    key_file.chmod(0o600)  # a secret file others may read is refused
    config = _cf_config(cf, origin_ca_key_file=str(key_file), requested_validity=7)
    del config["token_env"]
    csr, _ = make_csr(["svc.example.test"])
    bundle = CloudflareIssuer.from_config(config).issue(
        IssueRequest(csr_pem=csr, names=("svc.example.test",))
    )
    headers = cf.seen[-1][2]
    assert headers["X-Auth-User-Service-Key"] == cf.service_key
    assert "Authorization" not in headers
    leaf = x509.load_pem_x509_certificate(bundle.cert_pem.encode())
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days in (7, 8)


def test_cloudflare_list_and_revoke(cf: CloudflareEmulator) -> None:
    issuer = CloudflareIssuer.from_config(_cf_config(cf))
    csr, _ = make_csr(["list.example.test"])
    bundle = issuer.issue(IssueRequest(csr_pem=csr, names=("list.example.test",)))
    assert bundle.backend_id in {r["id"] for r in issuer.certificates()}
    issuer.revoke(bundle.cert_pem)  # id derived from the serial number
    assert "revoked_at" in issuer.client.get_certificate(bundle.backend_id)
    assert bundle.backend_id not in {r["id"] for r in issuer.client.list_certificates(cf.zone_id)}
    with pytest.raises(IssuerError, match=r"Cloudflare refused \(HTTP 404\): Certificate not"):
        issuer.revoke("", backend_id="12345")


def test_cloudflare_zone_ssl_mode_read_and_set(cf: CloudflareEmulator) -> None:
    client = CloudflareIssuer.from_config(_cf_config(cf)).client
    assert client.set_ssl_mode(cf.zone_id, "strict") == "strict"
    assert client.get_ssl_mode(cf.zone_id) == "strict"
    assert cf.seen[-2][0] == "PATCH"
    with pytest.raises(IssuerError, match="code 7003"):
        client.get_ssl_mode("0000000000000000000000000000dead")


def test_cloudflare_hostname_outside_account_shows_error_1010(cf: CloudflareEmulator) -> None:
    csr, _ = make_csr(["origin.other.test"])
    with pytest.raises(IssuerError) as err:
        CloudflareIssuer.from_config(_cf_config(cf)).issue(
            IssueRequest(csr_pem=csr, names=("origin.other.test",))
        )
    line = _one_line(err.value)
    assert line.startswith(
        "issuer cloudflare: create certificate: Cloudflare refused (HTTP 400): "
        "Failed to validate requested hostname origin.other.test"
    )
    assert line.endswith("(code 1010)")


def test_cloudflare_bad_token_is_an_authentication_error_without_the_token(
    cf: CloudflareEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CF_TEST_TOKEN", "wrong-token-value")
    csr, _ = make_csr(["auth.example.test"])
    issuer = CloudflareIssuer.from_config(_cf_config(cf))
    with pytest.raises(IssuerError) as err:
        issuer.issue(IssueRequest(csr_pem=csr, names=("auth.example.test",)))
    assert _one_line(err.value).endswith("Authentication error (code 10000)")
    assert "wrong-token-value" not in str(err.value) + repr(issuer) + repr(issuer.config)


def test_cloudflare_transient_1100_is_retried(cf: CloudflareEmulator) -> None:
    csr, _ = make_csr(["retry.example.test"])
    issuer = CloudflareIssuer.from_config(_cf_config(cf))
    cf.transient_next(2)
    issuer.issue(IssueRequest(csr_pem=csr, names=("retry.example.test",)))
    assert [m for m, _, _ in cf.seen].count("POST") == 3
    cf.transient_next(3)
    with pytest.raises(IssuerError, match=r"Failed to write certificate to Database \(code 1100\)"):
        issuer.issue(IssueRequest(csr_pem=csr, names=("retry.example.test",)))


@pytest.mark.parametrize(
    "status, body, expected",
    [
        (
            500,
            b"<html>500 Internal Server Error</html>",
            "HTTP 500 answer is not JSON: '<html>500 Internal Server Error</html>'",
        ),
        (200, b"\xff\xfe not json", "HTTP 200 answer is not JSON"),
        (
            200,
            b'{"result": {"certificate": "x"}}',
            "HTTP 200 answer is not a Cloudflare API envelope",
        ),
        (
            200,
            b'{"success": true, "errors": [], "result": {"id": "1", "certificate": "junk"}}',
            "the CA answered no certificate",
        ),
    ],
)
def test_cloudflare_bad_answers_are_one_clear_line(
    cf: CloudflareEmulator, status: int, body: bytes, expected: str
) -> None:
    cf.fail_next(status, body, count=3)
    csr, _ = make_csr(["bad.example.test"])
    with pytest.raises(IssuerError) as err:
        CloudflareIssuer.from_config(_cf_config(cf)).issue(
            IssueRequest(csr_pem=csr, names=("bad.example.test",))
        )
    assert expected in _one_line(err.value)


def test_cloudflare_certificate_for_another_key_is_rejected(cf: CloudflareEmulator) -> None:
    other_csr, _ = make_csr(["swap.example.test"])
    csr, _ = make_csr(["swap.example.test"])
    issuer = CloudflareIssuer.from_config(_cf_config(cf))
    wrong = issuer.client.create_certificate(other_csr, ["swap.example.test"], "origin-ecc", 7)
    cf.fail_next(200, {"success": True, "errors": [], "messages": [], "result": wrong})
    with pytest.raises(IssuerError, match="not for the CSR's key"):
        issuer.issue(IssueRequest(csr_pem=csr, names=("swap.example.test",)))


def test_cloudflare_unreachable_retries_then_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CF_TEST_TOKEN", "t")
    csr, _ = make_csr(["down.example.test"])
    issuer = CloudflareIssuer.from_config(
        {"base_url": f"http://127.0.0.1:{free_port()}/v4", "token_env": "CF_TEST_TOKEN", **FAST}
    )
    with pytest.raises(
        IssuerError,
        match=r"create certificate: unreachable after 3 attempts "
        r"\(Connection refused\)",
    ):
        issuer.issue(IssueRequest(csr_pem=csr, names=("down.example.test",)))


# --- ACME http-01 through a lab origin's own web server on port 80 ----------------------


class LabWebrootPublisher:
    """Publishes challenges in a lab host's document root, inside that host."""

    def __init__(self, host: Any, webroot: str = "/var/www/html") -> None:
        self.host, self.webroot = host, webroot

    def publish(self, path: str, content: str) -> None:
        self.host.exec(
            ["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "sh", self.webroot + path],
            input=content.encode(),
            check=True,
        )

    def unpublish(self, path: str) -> None:
        self.host.exec(["rm", "-f", self.webroot + path], check=True)


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 3], ids=["nginx", "apache"])
def test_acme_http01_is_served_by_the_lab_origin_on_port_80(
    lab: Any, tmp_path: Path, index: int
) -> None:
    host = lab.hosts[index]
    name = f"{host.name}.lab.test"
    pebble = Pebble(tmp_path / "pebble", host.address, 80)
    try:
        config = {"directory": pebble.directory, "ca_bundle": str(pebble.tls_ca), "timeout": 60}
        csr, _ = make_csr([name])
        publisher = LabWebrootPublisher(host)
        bundle = AcmeIssuer.from_config(config).issue(
            IssueRequest(csr_pem=csr, names=(name,), publisher=publisher)
        )
        verify_chain(bundle.cert_pem, bundle.chain_pem, pebble.root_pem(), name)
        left = host.exec(["find", "/var/www/html/.well-known/acme-challenge", "-type", "f"])
        assert left.stdout == b""
    finally:
        pebble.stop()


def test_acme_external_account_binding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64
    import secrets

    hmac_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    webroot = tmp_path / "webroot"
    webroot.mkdir()
    port = free_port(RESPONDER)
    responder = WebrootResponder(webroot, RESPONDER, port)
    pebble = Pebble(tmp_path / "ca", RESPONDER, port, eab_keys={"kid-1": hmac_key})
    try:
        key_file = tmp_path / "eab.key"
        key_file.write_text(hmac_key + "\n")
        key_file.chmod(0o600)
        base = {"directory": pebble.directory, "ca_bundle": str(pebble.tls_ca), **FAST}
        names = ("eab.example.test",)
        csr, _ = make_csr(list(names))
        bundle = AcmeIssuer.from_config(
            {**base, "eab_kid": "kid-1", "eab_hmac_key_file": str(key_file)}
        ).issue(IssueRequest(csr_pem=csr, names=names, publisher=WebrootPublisher(webroot)))
        verify_chain(bundle.cert_pem, bundle.chain_pem, pebble.root_pem(), names[0])

        with pytest.raises(IssuerError) as err:
            AcmeIssuer.from_config(base).issue(
                IssueRequest(csr_pem=csr, names=names, publisher=WebrootPublisher(webroot))
            )
        assert _one_line(err.value).startswith("issuer acme: account: ")
        assert "externalAccountRequired" in str(err.value)

        wrong = base64.urlsafe_b64encode(b"\x01" * 32).decode().rstrip("=")
        monkeypatch.setenv("EAB_TEST_KEY", wrong)
        with pytest.raises(IssuerError) as err:
            AcmeIssuer.from_config(
                {**base, "eab_kid": "kid-1", "eab_hmac_key_env": "EAB_TEST_KEY"}
            ).issue(IssueRequest(csr_pem=csr, names=names, publisher=WebrootPublisher(webroot)))
        assert _one_line(err.value).startswith(
            "issuer acme: account: external account binding JWS verification error"
        )
        assert wrong not in str(err.value)
    finally:
        pebble.stop()
        responder.stop()


def test_no_secret_reaches_the_logs_even_at_debug(
    cf: CloudflareEmulator,
    cfssl: CfsslServer,
    pebble_env: PebbleEnv,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    csr, _ = make_csr(["logs.example.test"])
    request = IssueRequest(
        csr_pem=csr, names=("logs.example.test",), publisher=WebrootPublisher(pebble_env.webroot)
    )
    CloudflareIssuer.from_config(_cf_config(cf)).issue(request)
    CfsslIssuer.from_config(
        {"url": cfssl.url, "profile": "server-auth", "auth_key_file": str(cfssl.auth_key_file)}
    ).issue(request)
    store = MemoryAccountStore()
    AcmeIssuer.from_config(pebble_env.config(), state=store).issue(request)
    account = store.acme_account(pebble_env.pebble.directory)
    assert account is not None
    key_body = account.account_key.reveal().splitlines()[1]
    assert caplog.records  # the libraries did log at debug
    for secret in (cf.token, cfssl.auth_key_file.read_text(), key_body):
        assert secret not in caplog.text
