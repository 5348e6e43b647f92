"""Secrets never leave their files: every output of full rotations (-vvv, --diff, --json,
status, debug logs, the state store) is searched for every private key, CA key, HMAC key and
API token involved; and every key file written on an origin, temporaries included, is watched
from its first moment and must never be readable by group or others."""

from __future__ import annotations

import base64
import json
import os
import secrets
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agent.lab import Lab, faults
from agent.state.paths import DB_NAME
from tests.emulators.cloudflare import CloudflareEmulator
from tests.integration.cas import CfsslServer, Pebble
from tests.integration.reliability import figures
from tests.integration.reliability.fleet import CERT_ROOT, TXN_ROOT, cli_argv, cli_env, write_plan
from tests.keywatch import KeyFileWatcher

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def key_needles(pem: bytes) -> list[bytes]:
    """Ways a private key's secret bytes could show up: the whole PEM body, the DER (raw,
    base64, hex), and the private value itself (hex, and base64 at each of the three byte
    alignments, as it would read inside any longer base64 text). Nothing public (a PEM line
    of an EC key also holds the public point, which certificates carry) is a needle."""
    lines = [ln.strip() for ln in pem.splitlines() if ln.strip() and not ln.startswith(b"-----")]
    needles = [b"".join(lines)]
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        return needles
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        try:
            der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
        except ValueError:
            continue
        needles += [der, base64.b64encode(der), der.hex().encode(), der.hex().upper().encode()]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        value = key.private_numbers().private_value
    elif isinstance(key, rsa.RSAPrivateKey):
        value = key.private_numbers().d
    else:
        return needles
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    needles += [raw, raw.hex().encode(), raw.hex().upper().encode()]
    needles += [base64.b64encode(raw[k:])[4:-4] for k in range(3)]
    return needles


def flat(data: bytes) -> bytes:
    """``data`` without line breaks (real or JSON-escaped), so base64 split over PEM lines is
    found too."""
    return data.replace(b"\\n", b"").replace(b"\n", b"").replace(b"\r", b"")


def pem_keys_under(top: str) -> Iterator[tuple[str, bytes]]:
    for dirpath, _, filenames in os.walk(top):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                data = Path(path).read_bytes()
            except OSError:
                continue
            if b"PRIVATE KEY-----" in data:
                yield path, data


def files_under(top: Path) -> Iterator[tuple[str, bytes]]:
    for dirpath, _, filenames in os.walk(top):
        for name in filenames:
            yield os.path.join(dirpath, name), Path(dirpath, name).read_bytes()


def mixed_inventory(
    lab: Lab,
    directory: Path,
    cfssl: CfsslServer,
    cf: CloudflareEmulator,
    acme: dict[str, object] | None = None,
) -> str:
    """origin 1: ACME (else the lab's local CA); 2: cfssl with an HMAC key; 3: Cloudflare
    Origin CA (an API token); 4: the lab's local CA."""
    token_file = directory / "cf-token"
    if not token_file.exists():
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, cf.token.encode())
        os.close(fd)
    data = yaml.safe_load(Path(lab.inventory_path).read_text())
    hosts = {
        name: h for group in data["all"]["children"].values() for name, h in group["hosts"].items()
    }
    names = [h.name for h in lab.hosts]
    # Full (strict) is asked of every CA-backed issuer: the test CAs' roots are named as trust
    (directory / "cfssl-root.pem").write_text(cfssl.root.cert_pem)
    for kind in ("ecc", "rsa"):
        (directory / f"cf-{kind}-root.pem").write_text(cf.root_pem(kind))
    hosts[names[1]]["issuer"] = {
        "backend": "cfssl",
        "url": cfssl.url,
        "profile": "server-auth",
        "auth_key_file": str(cfssl.auth_key_file),
        "retries": 0,
        "trust": str(directory / "cfssl-root.pem"),
    }
    hosts[names[2]]["issuer"] = {
        "backend": "cloudflare",
        "base_url": cf.base_url,
        "token_file": str(token_file),
        "retries": 0,
        "trust": [str(directory / f"cf-{kind}-root.pem") for kind in ("ecc", "rsa")],
    }
    if acme is not None:
        hosts[names[0]]["issuer"] = acme
    path = directory / ("inventory-acme.yml" if acme else "inventory.yml")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def acme_account_keys(state_dir: str) -> list[bytes]:
    db = sqlite3.connect(str(Path(state_dir) / DB_NAME))
    try:
        return [str(row[0]).encode() for row in db.execute("SELECT account_key FROM acme_accounts")]
    finally:
        db.close()


def test_no_output_of_a_full_rotation_shows_any_secret(
    make_lab: object, tmp_path: Path, state_dir: str
) -> None:
    lab: Lab = make_lab(4, apache=1)  # type: ignore[operator]
    cfssl = CfsslServer(tmp_path / "cfssl")
    cf = CloudflareEmulator(zones={secrets.token_hex(16): "lab.test"}, tls=False).start()
    pebble = Pebble(tmp_path / "pebble", lab.hosts[0].address, 80, env={"PEBBLE_AUTHZREUSE": "0"})
    try:
        first_inv = mixed_inventory(lab, tmp_path, cfssl, cf)
        acme = {
            "backend": "acme",
            "directory": pebble.directory,
            "ca_bundle": str(pebble.tls_ca),
            "email": "ops@lab.test",
            "timeout": 30,
            "retries": 0,
            "trust": str(tmp_path / "pebble-root.pem"),
        }
        (tmp_path / "pebble-root.pem").write_text(pebble.root_pem())
        inv = mixed_inventory(lab, tmp_path, cfssl, cf, acme)
        plan = write_plan(tmp_path)
        logs = tmp_path / "logs"
        logs.mkdir()
        env = cli_env(state_dir, ORIGIN_AGENT_LOG_DIR=str(logs))
        outputs: list[tuple[str, bytes]] = []

        def cli(*args: str) -> int:
            proc = subprocess.run(cli_argv(*args), env=env, capture_output=True, timeout=120)
            outputs.append((" ".join(args), proc.stdout + proc.stderr))
            return proc.returncode

        # the first run puts every site in place (ACME's http-01 is answered by the site)
        code = cli("-vvv", "rotate", "-i", first_inv, "--diff")
        assert code == 0, outputs[-1][1][-3000:].decode()
        assert cli("-vvv", "rotate", "-i", inv, "--force", "--diff", "--json") == 0
        assert cli("-vvv", "rotate", "-i", inv, "--force", "--diff", "--check") == 0
        assert cli("-vvv", "run", plan, "-i", inv, "--diff", "--json", "-e", "force=true") == 0
        broken = lab.hosts[3]
        faults.get("web-config-broken").inject(broken)  # the failure path prints too
        try:
            assert cli("-vvv", "run", plan, "-i", inv, "--diff", "-e", "force=true") == 1
        finally:
            faults.get("web-config-broken").undo(broken)
        cli("-vvv", "status", "-i", inv, "--state-dir", state_dir)
        cli("-vvv", "pins", "-i", inv)
    finally:
        pebble.stop()
        cf.stop()
        cfssl.stop()
    secret_sources: list[tuple[str, list[bytes]]] = []
    for host in lab.hosts:
        for root in (CERT_ROOT, TXN_ROOT):
            for path, pem in pem_keys_under(host.path(root)):
                secret_sources.append(
                    (f"{host.name}:{path.split('/root', 1)[1]}", key_needles(pem))
                )
    origin_keys = len(secret_sources)
    # the search finds a key where it would leak: JSON-escaped, in a log line, as a PEM
    sample = next(pem_keys_under(lab.hosts[0].path(CERT_ROOT)))[1]
    for leak in (json.dumps({"msg": sample.decode()}).encode(), b"DEBUG x: " + sample):
        assert any(n in leak or n in flat(leak) for n in key_needles(sample))
    account_keys = acme_account_keys(state_dir)
    for pem in account_keys:
        secret_sources.append(("ACME account key", key_needles(pem)))
    for path, pem in [
        *pem_keys_under(lab.dir.as_posix()),
        *pem_keys_under(str(tmp_path / "cfssl")),
        *pem_keys_under(str(tmp_path / "pebble")),
    ]:
        secret_sources.append((path, key_needles(pem)))
    for kind, (_, root_key) in cf.roots.items():
        pem = root_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        secret_sources.append((f"cloudflare {kind} root key", key_needles(pem)))
    hmac = cfssl.auth_key_file.read_bytes().strip()
    secret_sources.append(
        ("cfssl HMAC key", [hmac, bytes.fromhex(hmac.decode()), base64.b64encode(hmac)])
    )
    secret_sources.append(("Cloudflare API token", [cf.token.encode()]))
    haystacks = outputs + list(files_under(Path(state_dir))) + list(files_under(logs))
    total = sum(len(h) for _, h in haystacks)
    found = [
        f"{what} appears in {where}"
        for what, needles in secret_sources
        for where, hay, flat_hay in ((w, h, flat(h)) for w, h in haystacks)
        if any(n in hay or n in flat_hay for n in needles)
        # the store keeps the ACME account (a 0600 file, checked below) to reuse it
        and not (what == "ACME account key" and Path(where).parent == Path(state_dir))
    ]
    figures.record(
        "secrets (4 issuers: local CA, ACME, cfssl + HMAC key, Cloudflare Origin CA + token)",
        f"{len(secret_sources)} secrets ({origin_keys} private keys on origins) searched in "
        f"{len(haystacks)} outputs and files ({total} bytes, -vvv/--diff/--json/--check/status/"
        f"state store/debug logs): {len(found)} found",
    )
    assert origin_keys >= 6  # two versions kept per host at least
    assert {h.name for h in lab.hosts} <= {s.split(":")[0] for s, _ in secret_sources}
    assert account_keys, "the ACME host did not register an account"
    for path, _ in files_under(Path(state_dir)):
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0, path
    assert not found, "\n".join(found)


def test_every_key_file_written_on_an_origin_is_private_from_its_first_moment(
    make_lab: object, tmp_path: Path, state_dir: str
) -> None:
    lab: Lab = make_lab(2, apache=1)  # type: ignore[operator]
    write_plan(tmp_path)
    env = cli_env(state_dir)
    roots = []
    for host in lab.hosts:
        host.exec(["mkdir", "-p", CERT_ROOT, TXN_ROOT], check=True)
        roots += [host.path(CERT_ROOT), host.path(TXN_ROOT)]
    # the watcher can fail: a key written open to others, deep in a fresh directory, is seen
    with KeyFileWatcher(list(roots)) as probe:
        lab.hosts[0].exec(
            [
                "sh",
                "-c",
                f"umask 022; mkdir -p {CERT_ROOT}/probe/a && "
                f"echo '-----BEGIN PRIVATE KEY-----' > {CERT_ROOT}/probe/a/privkey.pem",
            ],
            check=True,
        )
        deadline = time.monotonic() + 5
        while not probe.violations and time.monotonic() < deadline:
            time.sleep(0.02)
    assert {(v.path.split("/root", 1)[1], v.mode) for v in probe.violations} == {
        (f"{CERT_ROOT}/probe/a/privkey.pem", 0o644)
    }
    lab.hosts[0].exec(["rm", "-rf", f"{CERT_ROOT}/probe"], check=True)
    with KeyFileWatcher(list(roots)) as watcher:
        for extra in ([], ["--force"], ["--force"]):
            proc = subprocess.run(
                cli_argv("rotate", "-i", lab.inventory_path, *extra),
                env=env,
                capture_output=True,
                timeout=120,
            )
            assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    temporaries = {p for p in watcher.keys_seen if ".origin-agent-tmp" in p}
    figures.record(
        "key files watched on origins (inotify, stat at creation, rename and chmod)",
        f"{len(watcher.seen)} file events, {len(watcher.keys_seen)} key files "
        f"({len(temporaries)} temporaries) over 3 rotations of 2 hosts: "
        f"{len(watcher.violations)} ever readable by group or others",
    )
    assert not watcher.overflow
    assert len(watcher.keys_seen) >= 6  # temporaries live a few ms: seen when the race allows
    assert not watcher.violations, watcher.violations
