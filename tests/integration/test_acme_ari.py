"""ACME Renewal Information against real pebble behind an ARI-adding front (a test double):
windows kept in the state store, Retry-After honoured, ``replaces`` sent with the new order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from agent.errors import IssuerError
from agent.pki.issuers.acme import AcmeIssuer
from agent.pki.issuers.ari import cert_id
from agent.pki.issuers.base import IssueRequest
from agent.pki.renewal import renewal_due
from agent.state import Store
from tests.emulators.ari_front import AriFront
from tests.integration.cas import Pebble, make_csr

pytestmark = pytest.mark.integration
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


class NoPublisher:
    """pebble runs with PEBBLE_VA_ALWAYS_VALID: nothing needs serving."""

    def publish(self, path: str, content: str) -> None:
        pass

    def unpublish(self, path: str) -> None:
        pass


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AriFront]:
    base = tmp_path_factory.mktemp("ari")
    pebble = Pebble(base, "127.0.0.1", 1, env={"PEBBLE_VA_ALWAYS_VALID": "1"})
    try:
        double = AriFront(pebble.port, base, pebble.tls_ca)
        double.tls_ca = pebble.tls_ca  # type: ignore[attr-defined]
        try:
            yield double
        finally:
            double.stop()
    finally:
        pebble.stop()


def issuer(front: AriFront, store: Store) -> AcmeIssuer:
    config: dict[str, Any] = {
        "backend": "acme",
        "directory": front.directory,
        "ca_bundle": str(front.tls_ca),  # type: ignore[attr-defined]
        "timeout": 60,
    }
    return AcmeIssuer.from_config(config, state=store)


def issue(acme: AcmeIssuer, name: str, replaces_pem: str = "") -> str:
    csr, _ = make_csr([name])
    bundle = acme.issue(
        IssueRequest(csr_pem=csr, names=(name,), publisher=NoPublisher(), replaces_pem=replaces_pem)
    )
    return bundle.cert_pem


def new_cert_pem(acme: AcmeIssuer) -> str:
    """A certificate of this CA that no window was ever fetched for (issued here)."""
    return issue(acme, "ari-unasked.origin.test")


def test_window_is_kept_until_retry_after_then_renewal_inside_it_replaces(
    front: AriFront, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    with Store(tmp_path / "state") as store:
        first = issuer(front, store)
        old_pem = issue(first, "ari1.origin.test")
        cert = x509.load_pem_x509_certificate(old_pem.encode())
        ident = cert_id(cert)
        assert ident is not None
        front.set_window(ident, now + 50 * DAY, now + 52 * DAY)
        front.retry_after = "3600"

        before = front.count()
        window = first.renewal_window(old_pem, now=now)
        assert front.requests[before:] == [("GET", f"/renewal-info/{ident}")]
        assert window is not None and now + 50 * DAY <= window.renew_at <= now + 52 * DAY
        decision = renewal_due(
            cert.not_valid_before_utc, cert.not_valid_after_utc, ari_window=window
        )
        assert decision.rule == "ari" and not decision.is_due(now)
        kept = store.renewal_info(ident)
        assert kept is not None and kept.ask_after == now + dt.timedelta(seconds=3600)
        first.close()

        # the next run (a new issuer, same state) inside Retry-After: no request at all
        second = issuer(front, store)
        before = front.count()
        assert second.renewal_window(old_pem, now=now + dt.timedelta(minutes=30)) == window
        assert front.count() == before

        # after Retry-After the CA is asked again; the same window keeps the same moment
        later = now + dt.timedelta(hours=2)
        assert second.renewal_window(old_pem, now=later) == window
        assert front.count() == before + 2  # the directory (new client) and the window

        # check mode reads the kept window only, even once Retry-After has passed
        unasked = new_cert_pem(second)
        before = front.count()
        assert second.renewal_window(old_pem, now=later + 10 * HOUR, ask=False) == window
        assert second.renewal_window(unasked, now=later, ask=False) is None
        assert front.count() == before

        # the CA moves the window into the past: renew now, naming the replaced certificate
        front.set_window(ident, now - 2 * DAY, now - DAY)
        much_later = later + dt.timedelta(hours=2)
        moved = second.renewal_window(old_pem, now=much_later)
        assert moved is not None and moved.end == (now - DAY).replace(microsecond=0)
        decision = renewal_due(
            cert.not_valid_before_utc, cert.not_valid_after_utc, ari_window=moved
        )
        assert decision.is_due(much_later)
        new_pem = issue(second, "ari1.origin.test", replaces_pem=old_pem)
        assert new_pem != old_pem
        assert front.orders[-1]["replaces"] == ident
        second.revoke(old_pem)  # revoke_replaced: after replaces, the old one is revoked too
        with pytest.raises(IssuerError, match=r"\(alreadyRevoked\)"):
            second.revoke(old_pem)  # the CA says so
        second.close()


def test_without_a_replaced_certificate_the_order_names_none(
    front: AriFront, tmp_path: Path
) -> None:
    with Store(tmp_path / "state") as store:
        acme = issuer(front, store)
        issue(acme, "ari2.origin.test")
        assert "replaces" not in front.orders[-1]
        acme.close()


def test_a_failing_renewal_info_answer_falls_back_to_the_default_rule(
    front: AriFront, tmp_path: Path
) -> None:
    with Store(tmp_path / "state") as store:
        acme = issuer(front, store)
        pem = issue(acme, "ari3.origin.test")  # the front has no window for it: 404
        assert acme.renewal_window(pem, now=dt.datetime.now(dt.UTC)) is None
        ident = cert_id(x509.load_pem_x509_certificate(pem.encode()))
        assert ident is not None and store.renewal_info(ident) is None  # asked again next run
        acme.close()
