"""The pre-made next key in the origin transaction: payload, script, and choosing the key."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from agent.errors import ValidationError
from agent.modules.base import ModuleError
from agent.modules.tls import txn
from agent.modules.tls.facts import OriginFacts
from agent.modules.tls.issue import next_key_files
from agent.modules.tls.issue import premade_next_key as _premade_next_key
from agent.pki.keys import PrivateKey
from agent.transport.changes import WriteFile
from agent.transport.local import LocalConnection

SERVER = txn.server_commands(
    ["nginx", "-t"],
    ["nginx", "-s", "reload"],
    ["systemctl", "reload", "nginx"],
    ["nginx"],
    ["systemctl", "start", "nginx"],
)
SITE = "www.example.test"


def _members(data: bytes) -> dict[str, int]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        prefix = txn.PAYLOAD_DIR + "/"
        return {m.name.removeprefix(prefix): m.mode for m in tar.getmembers()}


def test_next_files_travel_in_an_n_directory_with_their_modes() -> None:
    files = next_key_files(PrivateKey.generate("ec256"))
    members = _members(txn.payload(txn.Transaction(SITE, SERVER, next_files=files)))
    assert members["n"] == 0o700 and members["n/privkey.pem"] == 0o600
    assert members["n/pubkey.pem"] == 0o644
    assert "n" not in _members(txn.payload(txn.Transaction(SITE, SERVER)))


def test_only_the_two_next_key_files_are_accepted() -> None:
    with pytest.raises(ValidationError, match="next-key file"):
        txn.Transaction(SITE, SERVER, next_files=(WriteFile("../x", b""),))


def test_the_script_replaces_next_restorably_instead_of_deleting_it() -> None:
    files = next_key_files(PrivateKey.generate("ec256"))
    with_next = txn.apply_script(txn.Transaction(SITE, SERVER, consume_next=True, next_files=files))
    removes_next = 'rm -rf -- "$P" "$J/last" "$ROOT/next"'
    assert "journal nextdir" in with_next and removes_next not in with_next
    assert with_next.index("journal nextdir") < with_next.index('mv -T "$J/new" "$J/last"')
    consume_only = txn.apply_script(txn.Transaction(SITE, SERVER, consume_next=True))
    assert removes_next in consume_only and "journal nextdir" not in consume_only
    assert "nextdir)" in txn.rollback_script(SITE, SERVER)


def _premade(
    tmp_path: Path, key: PrivateKey | None, pub_of: PrivateKey, want: str
) -> PrivateKey | None:
    where = tmp_path / "etc/ssl/origin-agent" / SITE / "next"
    where.mkdir(parents=True, exist_ok=True)
    private, public = next_key_files(pub_of)
    if key is not None:
        (where / "privkey.pem").write_bytes(next_key_files(key)[0].data)
    facts = OriginFacts(next_pubkey_pem=public.data.decode())
    conn = LocalConnection(root=tmp_path)
    return _premade_next_key(conn, txn.CERT_ROOT, SITE, facts, want, "web1")


def test_a_matching_next_key_is_used(tmp_path: Path) -> None:
    key = PrivateKey.generate("ec256")
    got = _premade(tmp_path, key, key, "ec256")
    assert got is not None and got.pin == key.pin


def test_no_next_key_or_another_key_type_gives_a_fresh_key() -> None:
    facts = OriginFacts()
    assert _premade_next_key(LocalConnection(), txn.CERT_ROOT, SITE, facts, "ec256", "web1") is None


def test_a_next_key_of_another_type_is_not_used(tmp_path: Path) -> None:
    key = PrivateKey.generate("ec384")
    assert _premade(tmp_path, key, key, "ec256") is None


def test_a_private_key_not_matching_the_announced_pin_fails_the_host(tmp_path: Path) -> None:
    with pytest.raises(ModuleError, match="does not match pubkey.pem"):
        _premade(tmp_path, PrivateKey.generate("ec256"), PrivateKey.generate("ec256"), "ec256")


def test_a_missing_private_key_fails_the_host(tmp_path: Path) -> None:
    with pytest.raises(ModuleError, match="privkey.pem does not") as exc:
        _premade(tmp_path, None, PrivateKey.generate("ec256"), "ec256")
    assert "pins --make-next" in str(exc.value)
