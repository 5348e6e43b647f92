"""The local state store: round trips, modes, threads."""

from __future__ import annotations

import stat
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.errors import StateError
from agent.secret import Secret
from agent.state import AcmeAccount, IssuedCertificate, Store, default_state_dir
from agent.state.records import RenewalInfo

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _cert(host: str = "web-1", serial: str = "0a1b", issued: datetime = T0) -> IssuedCertificate:
    return IssuedCertificate(
        host=host,
        name="www.example.com",
        serial=serial,
        fingerprint="ab" * 32,
        pin="p" * 43 + "=",
        not_after=issued + timedelta(days=90),
        backend="localca",
        backend_id=serial,
        names=("www.example.com", "127.0.1.1"),
        cert_pem="-----BEGIN CERTIFICATE-----\n...",
        issued_at=issued,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_dir_is_0700_and_database_0600(tmp_path: Path) -> None:
    with Store(tmp_path / "state") as store:
        store.record_certificate(_cert())
        assert _mode(store.dir) == 0o700
        assert _mode(store.path) == 0o600
        assert store.path.name == "state.sqlite3"
        store.save_acme_account(
            AcmeAccount(
                directory_url="https://ca/dir",
                account_key=Secret("k"),
                account_url="u",
                created_at=T0,
            )
        )
        assert {_mode(p) for p in store.dir.iterdir()} == {0o600}


def test_default_state_dir_honours_the_environment() -> None:
    assert default_state_dir({"ORIGIN_AGENT_STATE_DIR": "/srv/oa"}) == Path("/srv/oa")
    assert default_state_dir({"HOME": "/h"}).parts[-3:] == (".local", "state", "origin-agent")
    assert default_state_dir({"XDG_STATE_HOME": "/x"}) == Path("/x/origin-agent")


def test_env_var_picks_the_store_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORIGIN_AGENT_STATE_DIR", str(tmp_path / "env-state"))
    with Store() as store:
        assert store.dir == tmp_path / "env-state"


def test_a_state_dir_open_to_others_is_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    open_dir.chmod(0o755)
    with pytest.raises(StateError) as exc:
        Store(open_dir)
    assert str(exc.value) == (
        f"{open_dir}: state directory is open to others (mode 0755); chmod 700 {open_dir}"
    )


def test_a_database_open_to_others_is_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "s") as store:
        path = store.path
    path.chmod(0o644)
    with pytest.raises(StateError, match="state database is open to others"):
        Store(tmp_path / "s")


def test_certificates_round_trip_and_revocation(tmp_path: Path) -> None:
    with Store(tmp_path / "s") as store:
        first = store.record_certificate(_cert(serial="0A1B"))
        second = store.record_certificate(_cert(serial="0c", issued=T0 + timedelta(days=60)))
        store.record_certificate(_cert(host="web-2", serial="0d"))
        got = store.certificates(host="web-1")
        assert [c.id for c in got] == [first, second]
        assert got[0] == replace(_cert(serial="0a1b"), backend_id="0A1B", id=first)
        assert got[0].not_after.tzinfo is not None
        assert store.latest_certificate("web-1", "www.example.com").serial == "0c"  # type: ignore[union-attr]
        assert store.mark_revoked("0C", T0 + timedelta(days=61)) == 1
        assert store.mark_revoked("0c", T0 + timedelta(days=62)) == 0
        latest = store.latest_certificate("web-1", "www.example.com")
        assert latest is not None and latest.serial == "0a1b"
        revoked = store.certificates(host="web-1")[1]
        assert revoked.revoked_at == T0 + timedelta(days=61)
        assert len(store.certificates(include_revoked=False)) == 2
    with Store(tmp_path / "s") as again:  # persisted
        assert len(again.certificates()) == 3


def test_private_keys_are_kept_only_when_asked(tmp_path: Path) -> None:
    key = Secret("-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n")
    with Store(tmp_path / "s") as store:
        cid = store.record_certificate(_cert(), key_pem=key)
        assert store.certificate_key(cid) is None
    assert b"secret" not in (tmp_path / "s" / "state.sqlite3").read_bytes()
    with Store(tmp_path / "s", store_keys=True) as store:
        cid = store.record_certificate(_cert(serial="ff"), key_pem=key)
        assert store.certificate_key(cid) == key


def test_acme_accounts_round_trip_with_a_masked_key(tmp_path: Path) -> None:
    account = AcmeAccount(
        directory_url="https://127.0.0.1:14000/dir",
        account_key=Secret("KEYPEM"),
        account_url="https://x/acct/1",
        created_at=T0,
        email="ops@example.com",
    )
    with Store(tmp_path / "s") as store:
        assert store.acme_account(account.directory_url) is None
        store.save_acme_account(account)
        assert store.acme_account(account.directory_url) == account
        store.save_acme_account(replace(account, account_url="https://x/acct/2"))
        got = store.acme_account(account.directory_url)
        assert got is not None and got.account_url == "https://x/acct/2"
        assert "KEYPEM" not in repr(got)


def test_renewal_windows_round_trip_and_are_replaced(tmp_path: Path) -> None:
    info = RenewalInfo(
        cert_id="aki.serial",
        directory_url="https://127.0.0.1:14000/dir",
        checked_at=T0,
        ask_after=T0 + timedelta(hours=6),
        start=T0 + timedelta(days=60),
        end=T0 + timedelta(days=62),
        renew_at=T0 + timedelta(days=61),
        explanation_url="https://ca.example/why",
    )
    none_offered = RenewalInfo("other.id", info.directory_url, T0, T0 + timedelta(hours=6))
    with Store(tmp_path / "s") as store:
        assert store.renewal_info(info.cert_id) is None
        store.save_renewal_info(info)
        store.save_renewal_info(none_offered)
        assert store.renewal_info(info.cert_id) == info
        assert store.renewal_info("other.id") == none_offered
        store.save_renewal_info(replace(info, ask_after=T0 + timedelta(days=1)))
        got = store.renewal_info(info.cert_id)
        assert got is not None and got.ask_after == T0 + timedelta(days=1)


def test_runs_are_recorded(tmp_path: Path) -> None:
    with Store(tmp_path / "s") as store:
        run = store.start_run("plans/rotate.yml", T0)
        assert store.runs()[0].ended_at is None
        store.finish_run(
            run, T0 + timedelta(minutes=3), status="ok", counts={"ok": 5, "changed": 2, "failed": 0}
        )
        (rec,) = store.runs()
        assert (rec.id, rec.plan, rec.status) == (run, "plans/rotate.yml", "ok")
        assert rec.ended_at == T0 + timedelta(minutes=3)
        assert dict(rec.counts) == {"changed": 2, "failed": 0, "ok": 5}


def test_naive_times_are_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "s") as store, pytest.raises(ValueError):
        store.start_run("p", datetime(2026, 1, 1))


def test_many_threads_write_at_once(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with Store(tmp_path / "s") as store:

        def work(n: int) -> None:
            try:
                for i in range(20):
                    store.record_certificate(_cert(host=f"web-{n}", serial=f"{n:x}{i:02x}"))
                    store.certificates(host=f"web-{n}")
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors
        assert len(store.certificates()) == 16 * 20
        assert {len(store.certificates(host=f"web-{n}")) for n in range(16)} == {20}
