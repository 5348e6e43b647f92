"""`pins`: site and key type of a host, rendering, exit codes, reading a next key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.errors import ValidationError
from agent.inventory import Host
from agent.jobs import pins
from agent.modules.tls.issue import next_key_files
from agent.pki.keys import PrivateKey
from agent.transport.local import LocalConnection

A = "A" * 43 + "="
B = "B" * 43 + "="


def _row(**kw: object) -> pins.PinRow:
    base: dict[str, object] = {
        "host": "web1",
        "name": "www.example.test",
        "address": "192.0.2.1",
        "port": 443,
    }
    return pins.PinRow(**{**base, **kw})  # type: ignore[arg-type]


def test_the_site_name_is_the_first_tls_name_as_tls_origin_uses_it() -> None:
    host = Host("web1", {"tls_names": ["www.example.test", "example.test"]})
    assert pins.site_name(host) == "www.example.test"
    assert pins.site_name(Host("web2.example.test")) == "web2.example.test"


def test_a_site_name_that_is_not_a_directory_name_is_refused() -> None:
    with pytest.raises(ValidationError):
        pins.site_name(Host("web1", {"tls_names": ["../etc"]}))


def test_the_key_type_comes_from_the_host_var_and_is_checked() -> None:
    assert pins.host_key_type(Host("a")) == "ec256"
    assert pins.host_key_type(Host("a", {"key_type": "rsa2048"})) == "rsa2048"
    with pytest.raises(ValidationError, match="key_type"):
        pins.host_key_type(Host("a", {"key_type": "dsa"}))


def test_the_table_shows_both_pins_and_the_pin_sha256_form() -> None:
    text = pins.table([_row(current_pin=A, next_pin=B, next_made=True)])
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["host", "name", "address"]
    assert A in lines[1] and B in lines[1] and "next key made now" in lines[1]
    assert lines[-1] == f'web1  pin-sha256="{A}"; pin-sha256="{B}"'


def test_a_host_without_next_key_or_tls_says_so() -> None:
    text = pins.table([_row(current_error="no certificate served (refused)")])
    assert "no certificate served (refused)" in text and "no next key (--make-next)" in text
    assert "pin-sha256" not in text


def test_json_lists_pins_once_each_with_the_directive() -> None:
    rows = [_row(current_pin=A, next_pin=A), _row(host="web2", next_pin=B)]
    data = json.loads(pins.to_json(rows))
    first, second = data["rows"]
    assert first["pins"] == [A] and first["pin_directive"] == f'pin-sha256="{A}"'
    assert second["pins"] == [B] and second["current_pin"] == "" and second["next_made"] is False


def test_exit_code_tells_unreachable_from_failed() -> None:
    assert pins.exit_code([_row(next_pin=A)]) == 0
    assert pins.exit_code([_row(next_error="permission denied")]) == 1
    assert pins.exit_code([_row(next_error="x"), _row(next_error="down", unreachable=True)]) == 3


def test_the_next_pin_is_read_from_next_pubkey(tmp_path: Path) -> None:
    conn = LocalConnection(root=tmp_path)
    assert pins.read_next_pin(conn, "www.example.test") is None
    key = PrivateKey.generate("ec256")
    where = tmp_path / "etc/ssl/origin-agent/www.example.test/next"
    where.mkdir(parents=True)
    private, public = next_key_files(key)
    (where / "pubkey.pem").write_bytes(public.data)
    assert pins.read_next_pin(conn, "www.example.test") == key.pin
    assert private.mode == 0o600 and b"PRIVATE KEY" in private.data
    assert b"PRIVATE" not in public.data
