"""The origin transaction's scripts: one remote round trip that stages a certificate version,
writes the site's config files, swaps the ``current`` symlink, tests the config and reloads, and
undoes all of it if any step fails. The value it runs is a
:class:`~agent.modules.tls.transaction.Transaction`.

Why one script: a rotation must cost few round trips (a real network makes each one tens of
milliseconds), and it must stay atomic when the controller dies mid-way: the script ignores
SIGHUP, so once started it either completes or rolls back on its own. One transaction runs at a
time per site, whoever starts it (two controllers, cron and a colleague): each script takes a
``flock`` on ``TXN_ROOT/NAME.lock`` (bounded wait) and names the holder when it cannot.

Temporaries are named ``.origin-agent-tmp-*`` and are removed by the next transaction.
Every value in the script is validated or quoted here; the key travels in the tar on stdin,
created 0600 under ``umask 077``, never on a command line. The script reports its steps as
``@@step NAME`` lines (checkpoints tests can anchor on) and ends with one ``@@result`` line.
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from agent.modules.tls import scripts
from agent.modules.tls.transaction import (
    CERT_ROOT,
    NEXT_FILES,
    PAYLOAD_DIR,
    PENDING_VERSION,
    TXN_ROOT,
    VERSION_FILES,
    ServerCommands,
    Transaction,
    check_name,
    payload,
)
from agent.pki import sclient
from agent.transport.changes import RunCommand
from agent.transport.quote import join
from agent.validate import check_path

__all__ = [
    "CERT_ROOT",
    "CHECKPOINTS",
    "LOCK_WAIT",
    "NEXT_FILES",
    "PAYLOAD_DIR",
    "PENDING_VERSION",
    "TXN_ROOT",
    "VERSION_FILES",
    "Outcome",
    "ServerCommands",
    "Transaction",
    "apply_script",
    "check_name",
    "checkpoint_line",
    "cleanup_script",
    "command_dirs",
    "parse_errlog",
    "parse_outcome",
    "parse_served",
    "payload",
    "rollback_script",
    "server_commands",
    "shell_argv",
]

LOCK_WAIT = 60  # seconds a transaction waits for another one on the same site
CHECKPOINTS = ("locked", "written", "switched", "tested", "reloaded")
"""The apply script's checkpoints, in order: the lock is held; the version and the site's
files are staged (``current`` not swapped yet); ``current`` is swapped (config not tested);
the config test passed; the server reloaded."""


def checkpoint_line(name: str) -> str:
    """The script line that reports checkpoint ``name`` (a fixed point tests may anchor on)."""
    if name not in CHECKPOINTS:
        raise ValueError(f"unknown checkpoint {name!r}")
    return f"echo @@step {name}\n"


_PLACEHOLDER = re.compile(r"__[A-Z][A-Z_]*?__")


def _fill(template: str, values: dict[str, str]) -> str:
    """Replace every ``__NAME__`` in one pass (a value is never scanned again)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), template)


def _common(txn_journal: str, root: str, server: ServerCommands, lock_wait: int = LOCK_WAIT) -> str:
    return _fill(
        scripts.COMMON,
        {
            "__LOCK_WAIT__": str(int(lock_wait)),
            "__J__": shlex.quote(txn_journal),
            "__ROOT__": shlex.quote(root),
            "__TEST__": join(server.test),
            "__RELOAD_SYSTEMD__": join(server.reload_systemd),
            "__RELOAD__": join(server.reload),
            "__START_SYSTEMD__": join(server.start_systemd),
            "__START__": join(server.start),
        },
    )


def apply_script(txn: Transaction) -> str:
    """The shell script that applies ``txn`` with :func:`payload` on its stdin."""
    if txn.pending:
        raise ValueError(f"{txn.name}: the new certificate is not issued yet")
    steps: list[str] = []
    for i, f in enumerate(txn.files):
        steps.append(
            f'install_file {i} {shlex.quote(f.path)} {f.mode:04o} 2>"$J/new/err" '
            f'|| fail write_failed "$(tail -n 1 "$J/new/err")"'
        )
    for link in txn.links:
        steps.append(
            f'install_link {shlex.quote(link.path)} {shlex.quote(link.target)} 2>"$J/new/err" '
            f'|| fail write_failed "$(tail -n 1 "$J/new/err")"'
        )
    snapped: set[str] = set()
    for command in txn.commands:
        for d in command_dirs(command):
            if d not in snapped:
                snapped.add(d)
                steps.append(f"snapshot_dir {shlex.quote(d)}")
        checks = " && ".join(join(c) + " >/dev/null 2>&1" for c in command.unless) or "false"
        steps.append(
            f'{{ {checks}; }} || {join(command.argv)} 9>&- >/dev/null 2>"$J/new/err" '
            f'|| fail write_failed "$(tail -n 1 "$J/new/err")"'
        )
    dirs = sorted(
        {f.path.rsplit("/", 1)[0] or "/" for f in txn.files}
        | {link.path.rsplit("/", 1)[0] or "/" for link in txn.links}
    )
    clean = " ".join(f"{shlex.quote(d)}/*.origin-agent-tmp" for d in dirs)
    body = _fill(
        scripts.APPLY,
        {
            "__VER__": shlex.quote(txn.version or ""),
            "__SEEN__": shlex.quote(txn.previous_version or ""),
            "__PAYLOAD__": txn.payload_dir,
            "__CLEAN_FILE_DIRS__": clean,
            "__STEPS__": "\n".join(steps),
            "__RELOAD_FLAG__": "yes" if txn.reload else "no",
            "__RELOAD_ON_FAIL__": "yes" if txn.reload else "no",
            "__NEXT__": scripts.NEXT if txn.next_files else "",
            "__PROBES__": _probes(txn),
            "__ERRLOG__": shlex.quote(txn.error_log),
            "__TOKEN__": shlex.quote(txn.token or "-"),
            # next_files replace NAME/next (restorably); without them a used next key is removed
            "__CONSUME_NEXT__": '"$ROOT/next"' if txn.consume_next and not txn.next_files else "",
            "__KEEP__": str(txn.keep_versions),
        },
    )
    return _common(txn.journal, txn.root, txn.server, txn.lock_wait) + body


def _probes(txn: Transaction) -> str:
    if not txn.probes:
        return ""
    want = ":".join(txn.expect[i : i + 2] for i in range(0, len(txn.expect), 2)).upper()
    lines = [scripts.PROBE]
    for p in txn.probes:
        argv = sclient.argv(p.address, p.port, p.name)
        lines.append(f"served {shlex.quote(p.name)} {shlex.quote(want)} {join(argv)}")
    return "\n".join(lines)


def _check_token(token: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{0,32}", token):
        raise ValueError(f"invalid transaction token {token!r}")
    return token


def parse_errlog(stdout: str) -> str:
    """What the server logged since the reload (a rollback script's ``@@errlog`` section)."""
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        if line == "@@errlog" and i + 1 < len(lines):
            try:
                return base64.b64decode(lines[i + 1].strip(), validate=True).decode(
                    errors="replace"
                )
            except (binascii.Error, ValueError):
                return ""
    return ""


def parse_served(stdout: str) -> dict[str, str]:
    """The ``@@served NAME`` sections of an apply script's output: name -> s_client output."""
    out: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []
    for line in stdout.splitlines():
        if line.startswith("@@served "):
            name, body = line[len("@@served ") :], []
        elif line == "@@end" and name is not None:
            out[name] = "\n".join(body)
            name = None
        elif name is not None:
            body.append(line)
    return out


def command_dirs(command: RunCommand) -> list[str]:
    """Directories an enable command adds entries to, taken from its ``test -e PATH`` checks;
    their listing is saved so that undo removes exactly what the command added."""
    dirs: list[str] = []
    for check in command.unless:
        if len(check) == 3 and check[0] == "test" and check[1] == "-e":
            d = check_path(check[2], where="enable check").rsplit("/", 1)[0]
            if d and d not in dirs:
                dirs.append(d)
    return dirs


def rollback_script(
    name: str,
    server: ServerCommands,
    *,
    cert_root: str = CERT_ROOT,
    txn_root: str = TXN_ROOT,
    lock_wait: int = LOCK_WAIT,
    error_log: str = "",
    token: str = "",
) -> str:
    """Undo the last applied transaction of site ``name`` (after a failed verification);
    with ``error_log``, first print what the server logged since that transaction's reload.
    With ``token``, undo only that transaction: if another one came after it (another
    controller, a colleague), report ``superseded`` and change nothing."""
    check_name(name)
    return _common(
        f"{check_path(txn_root)}/{name}", f"{check_path(cert_root)}/{name}", server, lock_wait
    ) + _fill(
        scripts.ROLLBACK,
        {
            "__ERRLOG__": shlex.quote(check_path(error_log) if error_log else ""),
            "__TOKEN__": shlex.quote(_check_token(token)),
        },
    )


@dataclass(frozen=True)
class Outcome:
    """What the remote script reported: ``status`` ok, write_failed, test_failed,
    reload_failed, locked, nothing_to_undo, superseded (a rollback found a later transaction
    than the one it was to undo), or unknown (no result line: the script was killed);
    ``steps``: the checkpoints it passed (``locked``, ``written``, ``switched``, ``tested``,
    ``reloaded``)."""

    status: str
    detail: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def message(self) -> str:
        return " ".join(self.detail).strip()


def parse_outcome(stdout: str) -> Outcome:
    """The last ``@@result`` line of a transaction script's output, and its checkpoints."""
    lines = stdout.splitlines()
    steps = tuple(line[len("@@step ") :] for line in lines if line.startswith("@@step "))
    for line in reversed(lines):
        if line.startswith("@@result "):
            parts = line[len("@@result ") :].split(" ", 1)
            rest = parts[1] if len(parts) > 1 else ""
            if parts[0] == "ok":
                return Outcome("ok", tuple(rest.split()), steps)
            return Outcome(parts[0], (rest,) if rest else (), steps)
    last = next((x for x in reversed(lines) if x.strip() and not x.startswith("@@")), "")
    return Outcome("unknown", (last,) if last else (), steps)


def shell_argv(script: str) -> list[str]:
    """How a script runs remotely: ``sh -c SCRIPT`` (argv; the transport quotes it)."""
    return ["sh", "-c", script, "origin-agent"]


def server_commands(
    test: Sequence[str],
    reload: Sequence[str],
    reload_systemd: Sequence[str],
    start: Sequence[str],
    start_systemd: Sequence[str],
) -> ServerCommands:
    return ServerCommands(
        tuple(test), tuple(reload), tuple(reload_systemd), tuple(start), tuple(start_systemd)
    )


def cleanup_script(
    name: str,
    server: ServerCommands,
    *,
    cert_root: str = CERT_ROOT,
    txn_root: str = TXN_ROOT,
    lock_wait: int = LOCK_WAIT,
) -> str:
    """Remove what an interrupted transaction of site ``name`` left, under the site's lock (a
    running transaction's temporaries are never taken from under it)."""
    check_name(name)
    return (
        _common(
            f"{check_path(txn_root)}/{name}", f"{check_path(cert_root)}/{name}", server, lock_wait
        )
        + scripts.CLEANUP
    )
