"""The transaction script itself, run by ``sh`` in a temporary directory with stand-in server
commands (no root, no web server): what it writes is what the transaction's changes say, and
every failure leaves the files byte-identical to before."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agent.modules.tls import txn
from agent.modules.tls.transaction import ServerCommands, Transaction
from agent.transport.changes import MakeDir, SwapSymlink, WriteFile

VERSION = "20261201T120000Z-00000abcdef0"
OLD = "20261101T120000Z-00000aaaaaaa"


def server(tmp: Path, *, test: int = 0, reload: int = 0) -> ServerCommands:
    """Stand-ins that log their calls and exit with the given status."""
    log = tmp / "server.log"

    def cmd(name: str, status: int) -> tuple[str, ...]:
        return (
            "sh",
            "-c",
            f'echo {name} >> "$0"; echo "{name} says no" >&2; exit {status}',
            str(log),
        )

    return ServerCommands(
        cmd("test", test),
        cmd("reload", reload),
        cmd("reload", reload),
        cmd("start", reload),
        cmd("start", reload),
    )


def origin(tmp: Path) -> dict[str, Path]:
    paths = {
        "site": tmp / "etc/sites-available/a.conf",
        "enabled": tmp / "etc/sites-enabled/a.conf",
        "policy": tmp / "etc/conf.d/policy.conf",
        "cert_root": tmp / "ssl",
    }
    paths["site"].parent.mkdir(parents=True)
    paths["enabled"].parent.mkdir(parents=True)
    paths["site"].write_bytes(b"old site\n")
    (paths["cert_root"] / "a" / OLD).mkdir(parents=True)
    (paths["cert_root"] / "a" / OLD / "fullchain.pem").write_bytes(b"old chain\n")
    os.symlink(OLD, paths["cert_root"] / "a" / "current")
    return paths


def transaction(tmp: Path, paths: dict[str, Path], **kw: object) -> Transaction:
    args: dict[str, object] = {
        "name": "a",
        "server": server(tmp),
        "version": VERSION,
        "version_files": (
            WriteFile("privkey.pem", b"KEY", 0o600),
            WriteFile("fullchain.pem", b"new chain\n"),
        ),
        "files": (
            WriteFile(str(paths["site"]), b"new site\n"),
            WriteFile(str(paths["policy"]), b"policy\n"),
        ),
        "links": (SwapSymlink(str(paths["enabled"]), str(paths["site"])),),
        "cert_root": str(paths["cert_root"]),
        "txn_root": str(tmp / "txn"),
        "token": "0a1b",
        "lock_wait": 1,
    }
    args.update(kw)
    return Transaction(**args)  # type: ignore[arg-type]


def run(t: Transaction) -> txn.Outcome:
    done = subprocess.run(
        txn.shell_argv(txn.apply_script(t)), input=txn.payload(t), capture_output=True, timeout=60
    )
    return txn.parse_outcome(done.stdout.decode())


def snapshot(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if rel.startswith(("txn", "server.log")):
            continue
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


def test_the_script_writes_exactly_what_the_changes_list(tmp_path: Path) -> None:
    paths = origin(tmp_path)
    t = transaction(tmp_path, paths)
    outcome = run(t)
    assert outcome.ok and outcome.steps == txn.CHECKPOINTS
    assert outcome.detail == (VERSION, OLD)
    journal = (tmp_path / "txn" / "a" / "last" / "journal").read_text().splitlines()
    # the undo journal names every path the script changed, in order (a new link is journalled
    # as a file to remove: its kind is what undo needs, not what it was)
    journalled = [line.split(" ")[1] for line in journal]
    listed = [
        c.path
        for c in t.changes()
        if isinstance(c, MakeDir | SwapSymlink)
        or (isinstance(c, WriteFile) and not c.path.startswith(f"{t.root}/{VERSION}/"))
    ]
    assert journalled == listed
    root = paths["cert_root"] / "a"
    assert os.readlink(root / "current") == VERSION
    assert (root / VERSION / "privkey.pem").stat().st_mode & 0o777 == 0o600
    assert paths["site"].read_bytes() == b"new site\n"
    assert os.readlink(paths["enabled"]) == str(paths["site"])
    assert (tmp_path / "server.log").read_text().split() == ["test", "reload"]
    assert not list(root.glob(".origin-agent-tmp-*"))


@pytest.mark.parametrize(
    ("failing", "status", "message"),
    [({"test": 1}, "test_failed", "test says no"), ({"reload": 1}, "reload_failed", "says no")],
    ids=["config-test", "reload"],
)
def test_a_failure_leaves_every_file_byte_identical(
    tmp_path: Path, failing: dict[str, int], status: str, message: str
) -> None:
    paths = origin(tmp_path)
    before = snapshot(tmp_path)
    outcome = run(transaction(tmp_path, paths, server=server(tmp_path, **failing)))
    assert outcome.status == status and message in outcome.message
    assert snapshot(tmp_path) == before


def test_rollback_restores_the_previous_state(tmp_path: Path) -> None:
    paths = origin(tmp_path)
    before = snapshot(tmp_path)
    t = transaction(tmp_path, paths)
    assert run(t).ok
    script = txn.rollback_script(
        "a", t.server, cert_root=t.cert_root, txn_root=t.txn_root, lock_wait=1
    )
    done = subprocess.run(txn.shell_argv(script), capture_output=True, timeout=60)
    assert txn.parse_outcome(done.stdout.decode()).ok
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if VERSION not in k} == before


def test_one_transaction_at_a_time_and_the_holder_is_named(tmp_path: Path) -> None:
    paths = origin(tmp_path)
    (tmp_path / "txn").mkdir()
    (tmp_path / "txn" / "a.holder").write_text("pid 4242 since 2026-12-01T12:00:00Z\n")
    holder = subprocess.Popen(
        ["flock", str(tmp_path / "txn" / "a.lock"), "sleep", "5"], stdout=subprocess.DEVNULL
    )
    try:
        for _ in range(100):  # bounded: until the other process holds the lock
            probe = subprocess.run(["flock", "-n", str(tmp_path / "txn" / "a.lock"), "true"])
            if probe.returncode != 0:
                break
        before = snapshot(tmp_path)
        outcome = run(transaction(tmp_path, paths))
    finally:
        holder.kill()
        holder.wait()
    assert outcome.status == "locked"
    assert "pid 4242 since 2026-12-01T12:00:00Z" in outcome.message
    assert snapshot(tmp_path) == before


def test_temporary_names_are_the_transactions_own(tmp_path: Path) -> None:
    paths = origin(tmp_path)
    t = transaction(tmp_path, paths, token="beef")
    assert t.payload_dir == ".origin-agent-tmp-payload-beef"
    assert t.payload_dir in txn.apply_script(t)
    assert transaction(tmp_path, paths, token="").payload_dir != t.payload_dir


def test_a_server_the_script_starts_does_not_keep_the_lock(tmp_path: Path) -> None:
    paths = origin(tmp_path)
    pidfile = tmp_path / "daemon.pid"
    start = ("sh", "-c", 'sleep 30 & echo $! > "$0"', str(pidfile))
    failing_reload = ("sh", "-c", "exit 1")
    stand_in = ServerCommands(("true",), failing_reload, failing_reload, start, start)
    try:
        first = run(transaction(tmp_path, paths, server=stand_in))
        assert first.ok  # the reload failed, the start worked: a daemon now runs
        assert pidfile.exists()
        second = run(transaction(tmp_path, paths, server=stand_in, version=None, version_files=()))
        assert second.status != "locked", second
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), 9)


def test_a_rollback_never_undoes_a_later_transaction(tmp_path: Path) -> None:
    paths = origin(tmp_path)
    ours = transaction(tmp_path, paths, token="aaaa")
    assert run(ours).ok
    later = transaction(
        tmp_path,
        paths,
        token="bbbb",
        version="20261201T130000Z-00000bbbbbbb",
        files=(WriteFile(str(paths["site"]), b"a colleague's site\n"),),
    )
    assert run(later).ok
    after_later = snapshot(tmp_path)
    script = txn.rollback_script(
        "a", ours.server, cert_root=ours.cert_root, txn_root=ours.txn_root, token="aaaa"
    )
    done = subprocess.run(txn.shell_argv(script), capture_output=True, timeout=60)
    outcome = txn.parse_outcome(done.stdout.decode())
    assert outcome.status == "superseded" and outcome.message.startswith("pid ")
    assert snapshot(tmp_path) == after_later
    mine = txn.rollback_script(
        "a", later.server, cert_root=later.cert_root, txn_root=later.txn_root, token="bbbb"
    )
    undone = subprocess.run(txn.shell_argv(mine), capture_output=True, timeout=60)
    assert txn.parse_outcome(undone.stdout.decode()).ok
    assert paths["site"].read_bytes() == b"new site\n"  # back to what ours wrote


@pytest.mark.parametrize("seen", [OLD, "20261001T120000Z-00000bbbbbbb", None])
def test_the_journal_holds_the_link_as_it_is_whatever_the_gather_saw(
    tmp_path: Path, seen: str | None
) -> None:
    paths = origin(tmp_path)
    (paths["cert_root"] / "a" / "20261001T120000Z-00000bbbbbbb").mkdir()  # what a stale gather saw
    t = transaction(tmp_path, paths, previous_version=seen)
    outcome = run(t)
    assert outcome.ok and outcome.detail == (VERSION, OLD)
    script = txn.rollback_script(
        "a", t.server, cert_root=t.cert_root, txn_root=t.txn_root, lock_wait=1
    )
    done = subprocess.run(txn.shell_argv(script), capture_output=True, timeout=60)
    assert txn.parse_outcome(done.stdout.decode()).ok
    assert os.readlink(paths["cert_root"] / "a" / "current") == OLD


def test_old_versions_are_pruned_but_never_the_current_or_previous_one(tmp_path: Path) -> None:
    paths = origin(tmp_path)  # current -> OLD, the oldest but one
    site = paths["cert_root"] / "a"
    older = ["20261001T120000Z-00000aaaaaa1", "20261002T120000Z-00000aaaaaa2"]
    newer = ["20261110T120000Z-00000aaaaaa3", "20261111T120000Z-00000aaaaaa4"]
    for name in (*older, *newer, "20261003T120000Z-not-a-version", "leftover"):
        (site / name).mkdir()
    assert run(transaction(tmp_path, paths, keep_versions=2)).ok
    kept = sorted(p.name for p in site.iterdir() if p.is_dir() and not p.is_symlink())
    # the newest two (the new one and the newest old one), the previous one (OLD), and
    # whatever is not named like a version
    assert kept == sorted([VERSION, newer[1], OLD, "20261003T120000Z-not-a-version", "leftover"])
