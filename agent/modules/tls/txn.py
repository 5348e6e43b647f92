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

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

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
from agent.transport.quote import check_path, join

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


_COMMON = r"""
set -u
trap '' HUP PIPE INT TERM
umask 077
J=__J__
ROOT=__ROOT__
result() { printf '@@result %s\n' "$*"; }
take_lock() {  # one transaction at a time per site, whoever runs it; the holder is named
  mkdir -p "${J%/*}" 2>/dev/null
  if ! { exec 9>>"$J.lock"; } 2>/dev/null; then result write_failed "cannot open $J.lock"; exit 0; fi
  if command -v flock >/dev/null 2>&1 && ! flock -w __LOCK_WAIT__ 9; then
    H=; read -r H < "$J.holder" 2>/dev/null
    result locked "another transaction holds $J.lock (${H:-holder unknown}) after __LOCK_WAIT__ s"; exit 0
  fi
  printf 'pid %s since %s\n' "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$J.holder"
}
# Server commands never inherit the lock's descriptor: a server they start would hold it.
server_test() { __TEST__ 9>&-; }
server_reload() { if [ -d /run/systemd/system ]; then __RELOAD_SYSTEMD__ 9>&-; else __RELOAD__ 9>&-; fi; }
server_start() { if [ -d /run/systemd/system ]; then __START_SYSTEMD__ 9>&-; else __START__ 9>&-; fi; }
reload_or_start() { server_reload >/dev/null 2>&1 || server_start >/dev/null 2>&1; }
put_link() {  # atomically point $1 at $2
  ln -sfn "$2" "$1.origin-agent-tmp" && mv -fT "$1.origin-agent-tmp" "$1"
}
undo() {  # replay journal $1 backwards
  [ -f "$1/journal" ] || return 0
  tac "$1/journal" | while read -r kind path backup; do
    case "$kind" in
      file) if [ "$backup" = - ]; then rm -f "$path"; else
              cp -Pp "$1/$backup" "$path.origin-agent-tmp" && mv -fT "$path.origin-agent-tmp" "$path"; fi ;;
      link) if [ "$backup" = - ]; then rm -f "$path"; else put_link "$path" "$backup"; fi ;;
      newdir) rm -rf "$path" ;;
      nextdir) if [ "$backup" = - ]; then rm -rf "$path"
               elif [ -d "$backup" ]; then rm -rf "$path" && mv -T "$backup" "$path"; fi ;;
      dirsnap) ls -1A "$path" | while read -r entry; do
                 grep -qxF -- "$entry" "$1/$backup" || rm -f "$path/$entry"
               done ;;
    esac
  done
}
"""

_APPLY = r"""
take_lock
echo @@step locked
VER=__VER__
N=0
log() { printf '%s\n' "$*" >> "$J/new/out"; }
rm_any() {  # rm -rf the arguments that exist (no process when none does)
  for p; do if [ -e "$p" ] || [ -L "$p" ]; then rm -rf -- "$@"; return; fi; done
}
rm_any "$ROOT"/.origin-agent-tmp-* "$J"/new "$J"/.origin-agent-tmp-* __CLEAN_FILE_DIRS__ 2>/dev/null
if ! ERR=$(mkdir -p "$J/new" "$ROOT" 2>&1); then
  result write_failed "$(printf '%s\n' "$ERR" | tail -n 1)"; exit 0
fi
chmod 0700 "$J"
: > "$J/new/journal"
P="$ROOT/__PAYLOAD__"
# The payload unpacks as $P/{v,f,n}: v (the version, 0755) and n are renamed into place.
if ! tar -x -p -f - -C "$ROOT" --no-same-owner 2>"$J/new/err" || [ ! -d "$P" ]; then
  rm -rf "$P"; result write_failed "$(grep -v 'Exiting with failure' "$J/new/err" | tail -n 1)"; exit 0
fi
journal() { printf '%s %s %s\n' "$1" "$2" "$3" >> "$J/new/journal"; }
backup() {  # record how to restore $1
  if [ -e "$1" ] || [ -L "$1" ]; then
    N=$((N + 1)); cp -Pp "$1" "$J/new/b$N" || return 1; journal "$2" "$1" "b$N"
  else journal "$2" "$1" -; fi
}
backup_link() {
  if [ -L "$1" ]; then journal link "$1" "$(readlink "$1")"; else backup "$1" file; fi
}
install_file() {  # payload member, destination, mode
  backup "$2" file || return 1
  (umask 022; mkdir -p "$(dirname "$2")") || return 1  # new directories are traversable
  cp "$P/f/$1" "$2.origin-agent-tmp" && chmod "$3" "$2.origin-agent-tmp" && mv -fT "$2.origin-agent-tmp" "$2"
}
install_link() { backup_link "$1" && put_link "$1" "$2"; }
snapshot_dir() {  # on undo, remove what appeared in $1 (what an enable command added)
  N=$((N + 1)); mkdir -p "$1" && ls -1A "$1" > "$J/new/b$N" && journal dirsnap "$1" "b$N"
}
fail() {  # status, message: undo everything, bring the server back
  undo "$J/new"; rm -rf "$P"
  if [ "__RELOAD_ON_FAIL__" = yes ]; then reload_or_start; fi
  result "$1" "$2"; exit 0
}
OLD=$(readlink "$ROOT/current" 2>/dev/null || true)
if [ -n "$VER" ]; then
  mv -T "$P/v" "$ROOT/$VER" 2>"$J/new/err" || fail write_failed "$(tail -n 1 "$J/new/err")"
  journal newdir "$ROOT/$VER" -
fi
__STEPS__
echo @@step written
if [ -n "$VER" ]; then
  PREV=$OLD CUR=$VER
  { if [ -n "$PREV" ]; then journal link "$ROOT/current" "$PREV"; else backup "$ROOT/current" file; fi &&
    put_link "$ROOT/current" "$VER"; } 2>"$J/new/err" || fail write_failed "$(tail -n 1 "$J/new/err")"
else
  PREV="" CUR=$OLD
fi
echo @@step switched
if ! server_test > "$J/new/test" 2>&1; then
  fail test_failed "$(grep -v '^$' "$J/new/test" | tail -n 3 | tr '\n' ' ')"
fi
echo @@step tested
if [ "__RELOAD_FLAG__" = yes ]; then
  if ! server_reload > "$J/new/reload" 2>&1; then
    if ! server_start >> "$J/new/reload" 2>&1; then
      fail reload_failed "$(grep -v '^$' "$J/new/reload" | tail -n 2 | tr '\n' ' ')"
    fi
  fi
fi
echo @@step reloaded
__NEXT__
rm -rf "$P" "$J/last" __CONSUME_NEXT__
mv -T "$J/new" "$J/last"
# Keep the newest __KEEP__ versions (names sort by time) and always the current and previous one.
set --
for v in "$ROOT"/[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-?*; do
  case "${v##*/}" in *Z-*[!0-9a-f]*) ;; *) [ -d "$v" ] && set -- "$@" "$v" ;; esac
done
EXCESS=$(($# - __KEEP__))
for v; do
  [ "$EXCESS" -gt 0 ] || break
  EXCESS=$((EXCESS - 1))
  case "${v##*/}" in "$CUR"|"$PREV") ;; *) rm -rf -- "$v" ;; esac
done
__PROBES__
result ok "${VER:--}" "${PREV:--}"
"""

# Handshakes from the origin itself (verify_from: origin): each name until the expected
# certificate is served three times in a row (bounded: 100 tries), then what was served.
_PROBE = r"""
served() {  # name, expected SHA-256 fingerprint (openssl's spelling or empty), s_client argv...
  SNI=$1 WANT=$2; shift 2
  i=0 s=0 OUT=
  while [ $i -lt 100 ]; do
    OUT=$("$@" </dev/null 2>&1)
    FP=$(printf '%s\n' "$OUT" | openssl x509 -noout -fingerprint -sha256 2>/dev/null)
    case "$FP" in *=*) if [ -z "$WANT" ] || [ "${FP#*=}" = "$WANT" ]; then s=$((s + 1)); else s=0; fi ;;
                  *) s=0 ;; esac
    [ $s -ge 3 ] && break
    i=$((i + 1)); [ $s -eq 0 ] && sleep 0.1
  done
  printf '@@served %s\n%s\n@@end\n' "$SNI" "$OUT"
}
"""

# After a successful switch: the payload's n/ becomes NAME/next. The old next/ is kept as a
# temporary (removed by the next transaction) and journalled, so a rollback puts it back.
_NEXT = r"""
NX="$ROOT/.origin-agent-tmp-next"; OX="$ROOT/.origin-agent-tmp-prevnext"
rm -rf "$NX" "$OX"
if mv -T "$P/n" "$NX"; then  # modes as in the payload (tar -p)
  if [ -e "$ROOT/next" ]; then
    if mv -T "$ROOT/next" "$OX"; then journal nextdir "$ROOT/next" "$OX"; else rm -rf "$NX"; fi
  else
    journal nextdir "$ROOT/next" -
  fi
  if [ -d "$NX" ] && ! mv -T "$NX" "$ROOT/next"; then
    rm -rf "$NX"; [ -d "$OX" ] && mv -T "$OX" "$ROOT/next"
  fi
fi
"""

_ROLLBACK = r"""
take_lock
if [ ! -f "$J/last/journal" ]; then result nothing_to_undo; exit 0; fi
undo "$J/last"
mv -T "$J/last" "$J/undone.$(date +%s)" 2>/dev/null || rm -rf "$J/last"
if ! server_test > "$J/rollback-test" 2>&1; then
  result test_failed "$(grep -v '^$' "$J/rollback-test" | tail -n 3 | tr '\n' ' ')"; exit 0
fi
reload_or_start
ls -1d "$J"/undone.* 2>/dev/null | sort | head -n -3 | while read -r old; do rm -rf "$old"; done
result ok "$(readlink "$ROOT/current" 2>/dev/null || echo -)"
"""


_PLACEHOLDER = re.compile(r"__[A-Z][A-Z_]*?__")


def _fill(template: str, values: dict[str, str]) -> str:
    """Replace every ``__NAME__`` in one pass (a value is never scanned again)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), template)


def _common(txn_journal: str, root: str, server: ServerCommands, lock_wait: int = LOCK_WAIT) -> str:
    return _fill(
        _COMMON,
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
        _APPLY,
        {
            "__VER__": shlex.quote(txn.version or ""),
            "__PAYLOAD__": txn.payload_dir,
            "__CLEAN_FILE_DIRS__": clean,
            "__STEPS__": "\n".join(steps),
            "__RELOAD_FLAG__": "yes" if txn.reload else "no",
            "__RELOAD_ON_FAIL__": "yes" if txn.reload else "no",
            "__NEXT__": _NEXT if txn.next_files else "",
            "__PROBES__": _probes(txn),
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
    lines = [_PROBE]
    for p in txn.probes:
        argv = sclient.argv(p.address, p.port, p.name)
        lines.append(f"served {shlex.quote(p.name)} {shlex.quote(want)} {join(argv)}")
    return "\n".join(lines)


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
) -> str:
    """Undo the last applied transaction of site ``name`` (after a failed verification)."""
    check_name(name)
    return (
        _common(
            f"{check_path(txn_root)}/{name}", f"{check_path(cert_root)}/{name}", server, lock_wait
        )
        + _ROLLBACK
    )


@dataclass(frozen=True)
class Outcome:
    """What the remote script reported: ``status`` ok, write_failed, test_failed,
    reload_failed, locked, nothing_to_undo, or unknown (no result line: the script was killed);
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


_CLEANUP = r"""
take_lock
set -- "$ROOT"/.origin-agent-tmp-*
if [ -e "$1" ] || [ -L "$1" ]; then rm -rf -- "$@"; fi
result ok
"""


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
        + _CLEANUP
    )
