"""`pins` (current + next SPKI pins, pre-made next keys used by `rotate`) and `promote`
(Cloudflare zone to Full (strict) only when every origin is ready), on real lab hosts and
the Cloudflare API emulator."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.cli import main
from agent.lab import Lab, LabHost
from agent.modules.tls import txn
from agent.modules.tls.issue import next_key_files
from agent.pki.keys import PrivateKey
from agent.pki.pins import spki_pin
from tests.emulators.cloudflare import CloudflareEmulator

pytestmark = pytest.mark.integration

ZONE = "023e105f4ecef8ad9ca31a8372d0c353"


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ORIGIN_AGENT_STATE_DIR", str(tmp_path / "state"))
    yield


def _next_dir(host: LabHost) -> str:
    return f"{txn.CERT_ROOT}/{host.name}.lab.test/next"


def _pins(capsys: pytest.CaptureFixture[str], inventory: str, *extra: str) -> dict[str, Any]:
    capsys.readouterr()
    code = main(["pins", "-i", inventory, "--json", *extra])
    out = capsys.readouterr().out
    assert code == 0, out
    return {row["host"]: row for row in json.loads(out)["rows"]}


def _mode(host: LabHost, path: str) -> str:
    return host.exec(["stat", "-c", "%a", path], check=True).stdout.decode().strip()


def test_rotation_serves_the_premade_next_key_and_makes_a_new_one(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(2, apache=1)
    inv = lab.inventory_path
    assert main(["bootstrap", "-i", inv]) == 0
    before = _pins(capsys, inv)
    assert all(row["current_pin"] and not row["next_pin"] for row in before.values())

    made = _pins(capsys, inv, "--make-next")
    for host in lab.hosts:
        row = made[host.name]
        assert row["next_made"] and row["next_pin"] not in ("", row["current_pin"])
        assert row["current_pin"] == before[host.name]["current_pin"]
        assert row["pin_directive"] == (
            f'pin-sha256="{row["current_pin"]}"; pin-sha256="{row["next_pin"]}"'
        )
        assert _mode(host, _next_dir(host)) == "700"
        assert _mode(host, f"{_next_dir(host)}/privkey.pem") == "600"
    again = _pins(capsys, inv, "--make-next")  # hosts that have one keep it
    kept = {h: r["next_pin"] for h, r in again.items()}
    assert kept == {h: r["next_pin"] for h, r in made.items()}
    assert not any(r["next_made"] for r in again.values())

    assert main(["rotate", "-i", inv, "--force"]) == 0
    after = _pins(capsys, inv)
    for host in lab.hosts:
        old, new = made[host.name], after[host.name]
        assert new["current_pin"] == old["next_pin"], host.name  # the edge's pinned next key
        assert new["next_pin"] and new["next_pin"] not in (old["next_pin"], old["current_pin"])
        assert _mode(host, f"{_next_dir(host)}/privkey.pem") == "600"
        pub = Path(host.path(f"{_next_dir(host)}/pubkey.pem")).read_bytes()
        key = PrivateKey.from_pem(Path(host.path(f"{_next_dir(host)}/privkey.pem")).read_bytes())
        assert spki_pin(pub) == key.pin == new["next_pin"]
    # not due: nothing rotates, the next key stays
    assert main(["rotate", "-i", inv]) == 0
    assert _pins(capsys, inv) == after


def test_the_text_output_has_the_pin_sha256_form(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(1)
    capsys.readouterr()
    assert main(["pins", "-i", lab.inventory_path, "--make-next"]) == 0
    out = capsys.readouterr().out
    host = lab.hosts[0].name
    assert out.splitlines()[0].startswith("host")
    assert "no certificate served" in out  # a Flexible origin: no current pin yet
    line = next(line for line in out.splitlines() if line.startswith(host) and "pin-sha256" in line)
    assert line.count('pin-sha256="') == 1


def _next_txn(host: LabHost, *, test: tuple[str, ...]) -> tuple[txn.Transaction, str]:
    server = txn.server_commands(test, ("true",), ("true",), ("true",), ("true",))
    key = PrivateKey.generate("ec256")
    name = f"{host.name}.lab.test"
    return txn.Transaction(name, server, consume_next=True, next_files=next_key_files(key)), key.pin


def _apply(host: LabHost, transaction: txn.Transaction) -> txn.Outcome:
    script = txn.shell_argv(txn.apply_script(transaction))
    result = host.exec(script, input=txn.payload(transaction))
    return txn.parse_outcome(result.stdout.decode())


def _next_pin(host: LabHost) -> str | None:
    path = Path(host.path(f"{_next_dir(host)}/pubkey.pem"))
    return spki_pin(path.read_bytes()) if path.exists() else None


def test_the_next_key_changes_only_with_a_successful_transaction_and_rollback_restores_it(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(1)
    host = lab.hosts[0]
    first, pin1 = _next_txn(host, test=("true",))
    assert _apply(host, first).ok
    assert _next_pin(host) == pin1

    failing, _ = _next_txn(host, test=("false",))  # config test fails: next untouched
    assert _apply(host, failing).status == "test_failed"
    assert _next_pin(host) == pin1

    second, pin2 = _next_txn(host, test=("true",))
    assert _apply(host, second).ok and _next_pin(host) == pin2
    undo = host.exec(txn.shell_argv(txn.rollback_script(first.name, second.server)))
    assert txn.parse_outcome(undo.stdout.decode()).ok
    assert _next_pin(host) == pin1  # after a failed verification the pinned next key is back
    assert _mode(host, f"{_next_dir(host)}/privkey.pem") == "600"


# -- promote ---------------------------------------------------------------------------


@pytest.fixture
def cloudflare(monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudflareEmulator]:
    with CloudflareEmulator(zones={ZONE: "lab.test"}) as cf:
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", cf.token)
        yield cf


def _zone_inventory(lab: Lab, tmp_path: Path, zone: str = ZONE) -> str:
    data = yaml.safe_load(Path(lab.inventory_path).read_text())
    data["all"]["vars"]["cloudflare_zone"] = zone
    path = tmp_path / "zone.yml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _promote(cf: CloudflareEmulator, inventory: str, *extra: str) -> list[str]:
    assert cf.ca_bundle is not None
    return [
        "promote",
        "--zone",
        ZONE,
        "-i",
        inventory,
        "--api-base",
        cf.base_url,
        "--ca-bundle",
        cf.ca_bundle,
        *extra,
    ]


def _patches(cf: CloudflareEmulator) -> list[str]:
    return [path for method, path, _ in cf.seen if method == "PATCH"]


def test_promote_sets_strict_only_when_every_origin_is_ready(
    make_lab: Callable[..., Lab],
    cloudflare: CloudflareEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lab = make_lab(2, apache=1)
    inv = _zone_inventory(lab, tmp_path)
    assert main(["bootstrap", "-i", inv]) == 0
    capsys.readouterr()

    assert main(_promote(cloudflare, inv, "--check")) == 0
    out = capsys.readouterr().out
    assert "2 origins ready for Full (strict); would set Full -> Full (strict)" in out
    assert cloudflare.ssl_modes[ZONE] == "full" and not _patches(cloudflare)

    assert main(_promote(cloudflare, inv)) == 0
    out = capsys.readouterr().out
    assert "set Full -> Full (strict)" in out and cloudflare.token not in out
    assert cloudflare.ssl_modes[ZONE] == "strict"
    assert _patches(cloudflare) == [f"/client/v4/zones/{ZONE}/settings/ssl"]

    assert main(_promote(cloudflare, inv)) == 0
    assert "already Full (strict)" in capsys.readouterr().out
    assert len(_patches(cloudflare)) == 1


def test_one_flexible_origin_blocks_the_promotion(
    make_lab: Callable[..., Lab],
    cloudflare: CloudflareEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lab = make_lab(2)
    inv = _zone_inventory(lab, tmp_path)
    ready, flexible = lab.hosts
    assert main(["bootstrap", "-i", inv, ready.name]) == 0
    cloudflare.ssl_modes[ZONE] = "flexible"
    for extra in ((), ("--check",)):
        capsys.readouterr()
        assert main(_promote(cloudflare, inv, *extra)) == 4
        out = capsys.readouterr().out
        assert out.startswith(f"zone {ZONE}: stays Flexible: 1 of the zone's names")
        assert f"  {flexible.name}: {flexible.name}.lab.test: ready for Flexible only" in out
        assert ready.name + ":" not in out
    assert cloudflare.ssl_modes[ZONE] == "flexible" and not _patches(cloudflare)


def test_an_api_error_is_one_line_naming_the_backend_and_never_the_token(
    cloudflare: CloudflareEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inv = tmp_path / "inv.yml"  # no origin is probed: the zone's mode is read first
    inv.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {
                        "web1": {
                            "ansible_host": "127.0.0.1",
                            "cloudflare_zone": ZONE,
                            "tls_names": ["web1.lab.test"],
                        }
                    }
                }
            }
        )
    )
    wrong = "wrong-token-" + "x" * 20
    monkeypatch.setenv("CF_OTHER", wrong)
    assert main(_promote(cloudflare, str(inv), "--token-env", "CF_OTHER")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cloudflare" in err and "get SSL mode" in err
    assert wrong not in err and cloudflare.token not in err

    refusal = {
        "success": False,
        "errors": [{"code": 1003, "message": "Invalid zone"}],
        "messages": [],
        "result": None,
    }
    cloudflare.fail_next(400, refusal)
    assert main(_promote(cloudflare, str(inv))) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cloudflare" in err and "Invalid zone (code 1003)" in err
    assert cloudflare.ssl_modes[ZONE] == "full"

    token_file = tmp_path / "token"
    token_file.write_text(cloudflare.token + "\n")
    token_file.chmod(0o600)
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    cloudflare.ssl_modes[ZONE] = "strict"
    assert main(_promote(cloudflare, str(inv), "--token-file", str(token_file))) == 0
    assert "already Full (strict)" in capsys.readouterr().out


def test_a_zone_without_origins_in_the_inventory_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"web1": {"cloudflare_zone": "other"}}}}))
    assert main(["promote", "--zone", ZONE, "-i", str(inv)]) == 2
    err = capsys.readouterr().err
    assert f"no host in the inventory belongs to zone {ZONE}" in err and "other" in err
