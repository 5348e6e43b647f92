"""The TLS step's round trips to the origin: the gather script, the transaction script, the
rollback and the cleanup of an interrupted run's temporaries. Each is one command."""

from __future__ import annotations

from dataclasses import replace

from agent.modules.base import ModuleError
from agent.modules.tls import facts as tls_facts
from agent.modules.tls import txn
from agent.modules.tls.decide import Desired
from agent.servers.base import detect_paths, parse_detect
from agent.transport.base import Connection, Result

_FAILED = {
    "write_failed": "writing files failed",
    "test_failed": "config test failed",
    "reload_failed": "reload failed",
    "locked": "another transaction is running on this site",
}


def gather(
    conn: Connection,
    candidates: tuple[Desired, ...],
    *,
    host: str,
    become: bool,
    discover: bool = True,
) -> tls_facts.OriginFacts:
    """One round trip: the site's certificate state and, for every candidate server's desired
    state, the files, links and enable checks it would change; with ``discover``, unless our
    own site is already placed, each server's effective configuration too.

    Raises:
        ModuleError: the script did not run to its end.
    """
    first = candidates[0]
    paths = sorted(
        {f.path for d in candidates for f in d.files}
        | {d.adapter.main_config_path for d in candidates}
    )
    dumps = [
        tls_facts.Dump(
            d.adapter.name,
            d.adapter.paths.binary,
            tuple(tuple(a) for a in d.adapter.dump_argvs()),
            tuple(dict.fromkeys(_site_dirs(d))),
            (d.adapter.paths.main_config,),
        )
        for d in candidates
    ]
    links = sorted({link.path for d in candidates for link in d.links})
    script = tls_facts.script(
        root=f"{first.cert_root}/{first.name}",
        files=paths,
        links=links,
        checks=[c.unless for d in candidates for c in d.commands],
        detect=detect_paths(),
        pid_files=[p for d in candidates for p in d.adapter.pid_files],
        dumps=dumps if discover else (),
    )
    result = conn.run(["sh", "-c", script], become=become, timeout=60)
    if "@@running" not in result.stdout:
        tail = (result.stderr.strip() or result.stdout.strip())[-200:]
        raise ModuleError(
            f"could not read the origin's state (exit {result.exit_code}): {tail or 'no output'}",
            host=host,
        )
    return tls_facts.parse(result.stdout, detect_parser=parse_detect)


def _site_dirs(want: Desired) -> tuple[str, ...]:
    p = want.adapter.paths
    return (p.sites_available, p.sites_enabled, f"{p.conf_dir}/conf.d")


def facts_for(
    facts: tls_facts.OriginFacts, candidates: tuple[Desired, ...], chosen: int
) -> tls_facts.OriginFacts:
    """The gathered facts with only the chosen candidate's enable checks (the gather ran every
    candidate's, in candidate order)."""
    start = sum(len(d.commands) for d in candidates[:chosen])
    return replace(facts, checks=facts.checks[start : start + len(candidates[chosen].commands)])


def apply_transaction(
    conn: Connection, transaction: txn.Transaction, *, become: bool
) -> tuple[Result, txn.Outcome]:
    """Run a transaction on the origin: one command, the payload on its stdin."""
    result = conn.run(
        txn.shell_argv(txn.apply_script(transaction)),
        stdin=txn.payload(transaction),
        become=become,
        timeout=120 + txn.LOCK_WAIT,
    )
    return result, txn.parse_outcome(result.stdout)


def apply(
    conn: Connection, transaction: txn.Transaction, *, host: str, become: bool
) -> dict[str, str]:
    """Apply ``transaction``; on failure the script has already undone itself. Returns the
    handshakes the script made from the origin (name -> ``openssl s_client`` output).

    Raises:
        ModuleError: a write, the config test or the reload failed (previous state restored),
            or another transaction held the site's lock (nothing done).
    """
    result, outcome = apply_transaction(conn, transaction, become=become)
    if outcome.ok:
        return txn.parse_served(result.stdout)
    what = _FAILED.get(outcome.status, f"transaction {outcome.status}")
    hint = (
        "nothing changed"
        if outcome.status == "locked"
        else "previous certificate and site restored"
    )
    raise ModuleError(
        f"{what}: {outcome.message or result.stderr.strip()[-300:]}", host=host, hint=hint
    )


def rollback(
    conn: Connection, want: Desired, *, become: bool, token: str = ""
) -> tuple[txn.Outcome, list[str]]:
    """Undo the site's last applied transaction (after a failed verification); also what the
    server logged since that transaction's reload (its own error lines, one each)."""
    script = txn.rollback_script(
        want.name,
        want.server,
        cert_root=want.cert_root,
        error_log=want.adapter.error_log_path(),
        token=token,
    )
    undo = conn.run(txn.shell_argv(script), become=become, timeout=120 + txn.LOCK_WAIT)
    said = want.adapter.server_errors(txn.parse_errlog(undo.stdout))
    return txn.parse_outcome(undo.stdout), said


def cleanup(conn: Connection, want: Desired, *, become: bool) -> txn.Outcome:
    """Remove an interrupted transaction's temporaries, under the site's lock."""
    script = txn.cleanup_script(want.name, want.server, cert_root=want.cert_root)
    done = conn.run(txn.shell_argv(script), become=become, timeout=60 + txn.LOCK_WAIT)
    return txn.parse_outcome(done.stdout)
