"""The origin transaction: one remote round trip that stages a certificate version, writes the
site's config files, swaps the ``current`` symlink, tests the config and reloads, and undoes
all of it if any step fails.

Why one script: a rotation must cost few round trips (a real network makes each one tens of
milliseconds), and it must stay atomic when the controller dies mid-way: the script ignores
SIGHUP, so once started it either completes or rolls back on its own.

Layout on the origin::

    /etc/ssl/origin-agent/NAME/VERSION/{privkey,cert,chain,fullchain}.pem   (key 0600)
    /etc/ssl/origin-agent/NAME/current -> VERSION
    /etc/ssl/origin-agent/NAME/next/{privkey,pubkey}.pem   pre-made next key (optional)
    /var/lib/origin-agent/txn/NAME/last/{journal,b1,b2...}   undo journal of the last change
                                                             (backups named relative to it)

Temporaries are named ``.origin-agent-tmp-*`` and are removed by the next transaction.
Every value in the script is validated or quoted here; the key travels in the tar on stdin,
created 0600 under ``umask 077``, never on a command line.
"""

from __future__ import annotations

import io
import re
import shlex
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field

from agent.errors import ValidationError
from agent.transport.quote import check_path, join

CERT_ROOT = "/etc/ssl/origin-agent"
TXN_ROOT = "/var/lib/origin-agent/txn"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_VERSION = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{4,16}$")
VERSION_FILES = {
    "privkey.pem": 0o600,
    "cert.pem": 0o644,
    "chain.pem": 0o644,
    "fullchain.pem": 0o644,
    "meta.json": 0o644,
}
# The pre-made next key (NAME/next/), shipped with a rotation that used the previous one.
NEXT_FILES = {"privkey.pem": 0o600, "pubkey.pem": 0o644}


def check_name(value: str, *, where: str = "name") -> str:
    """A site name usable as a file name: letters, digits, ``.``, ``_``, ``-``."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise ValidationError(f"invalid site name {value!r} (letters, digits, . _ -)", where=where)
    return value


@dataclass(frozen=True)
class FileWrite:
    path: str
    data: bytes = field(repr=False)
    mode: int = 0o644


@dataclass(frozen=True)
class LinkWrite:
    path: str
    target: str


@dataclass(frozen=True)
class EnableCommand:
    """Run ``argv`` unless every ``check`` argv already exits 0 (not undone on rollback:
    enabling a module such as mod_ssl is harmless to keep)."""

    argv: tuple[str, ...]
    check: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class ServerCommands:
    test: tuple[str, ...]
    reload: tuple[str, ...]
    reload_systemd: tuple[str, ...]
    start: tuple[str, ...]
    start_systemd: tuple[str, ...]


@dataclass(frozen=True)
class Transaction:
    """Everything one origin change consists of. ``version`` None: no new certificate."""

    name: str
    server: ServerCommands
    version: str | None = None
    version_files: tuple[FileWrite, ...] = ()  # paths are bare file names (VERSION_FILES)
    files: tuple[FileWrite, ...] = ()
    links: tuple[LinkWrite, ...] = ()
    commands: tuple[EnableCommand, ...] = ()
    reload: bool = True
    consume_next: bool = False
    # Files of a fresh NAME/next/ (bare names, NEXT_FILES): after a successful switch the old
    # next/ is replaced by them (and put back if the change is rolled back); implies consume_next.
    next_files: tuple[FileWrite, ...] = ()
    keep_versions: int = 3
    cert_root: str = CERT_ROOT
    txn_root: str = TXN_ROOT

    def __post_init__(self) -> None:
        check_name(self.name)
        check_path(self.cert_root, where="cert_root")
        check_path(self.txn_root, where="txn_root")
        if self.version is not None and not _VERSION.fullmatch(self.version):
            raise ValidationError(f"invalid certificate version {self.version!r}")
        for vf in self.version_files:
            if vf.path not in VERSION_FILES:
                raise ValidationError(f"unexpected certificate file {vf.path!r}")
        for nf in self.next_files:
            if nf.path not in NEXT_FILES:
                raise ValidationError(f"unexpected next-key file {nf.path!r}")
        for f in self.files:
            check_path(f.path, where="file")
        for link in self.links:
            check_path(link.path, where="link")
            if link.target.startswith("/"):
                check_path(link.target, where="link target")
            elif not _NAME.fullmatch(link.target):
                raise ValidationError(f"invalid link target {link.target!r}")
        if not 1 <= self.keep_versions <= 100:
            raise ValidationError("keep_versions must be 1..100")

    @property
    def root(self) -> str:
        return f"{self.cert_root}/{self.name}"

    @property
    def journal(self) -> str:
        return f"{self.txn_root}/{self.name}"


PAYLOAD_DIR = ".origin-agent-tmp-payload"  # unpacked in NAME/, removed by every transaction


def payload(txn: Transaction) -> bytes:
    """The tar sent on stdin, all under :data:`PAYLOAD_DIR`: ``v/<file>`` (the certificate
    version, a 0755 directory), ``f/<n>`` (files) and ``n/<file>`` (the next key)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        members = [(f"v/{vf.path}", vf.data, vf.mode) for vf in txn.version_files]
        members += [(f"f/{i}", f.data, f.mode) for i, f in enumerate(txn.files)]
        members += [(f"n/{nf.path}", nf.data, NEXT_FILES[nf.path]) for nf in txn.next_files]
        dirs = {"": 0o700, "v": 0o755, "f": 0o700} | ({"n": 0o700} if txn.next_files else {})
        for dirname, mode in dirs.items():
            info = tarfile.TarInfo(f"{PAYLOAD_DIR}/{dirname}".rstrip("/"))
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)
        for name, data, mode in members:
            info = tarfile.TarInfo(f"{PAYLOAD_DIR}/{name}")
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


_COMMON = r"""
set -u
trap '' HUP PIPE INT TERM
umask 077
J=__J__
ROOT=__ROOT__
result() { printf '@@result %s\n' "$*"; }
server_test() { __TEST__; }
server_reload() { if [ -d /run/systemd/system ]; then __RELOAD_SYSTEMD__; else __RELOAD__; fi; }
server_start() { if [ -d /run/systemd/system ]; then __START_SYSTEMD__; else __START__; fi; }
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
if [ -n "$VER" ]; then
  PREV=$OLD CUR=$VER
  { if [ -n "$PREV" ]; then journal link "$ROOT/current" "$PREV"; else backup "$ROOT/current" file; fi &&
    put_link "$ROOT/current" "$VER"; } 2>"$J/new/err" || fail write_failed "$(tail -n 1 "$J/new/err")"
else
  PREV="" CUR=$OLD
fi
if ! server_test > "$J/new/test" 2>&1; then
  fail test_failed "$(grep -v '^$' "$J/new/test" | tail -n 3 | tr '\n' ' ')"
fi
if [ "__RELOAD_FLAG__" = yes ]; then
  if ! server_reload > "$J/new/reload" 2>&1; then
    if ! server_start >> "$J/new/reload" 2>&1; then
      fail reload_failed "$(grep -v '^$' "$J/new/reload" | tail -n 2 | tr '\n' ' ')"
    fi
  fi
fi
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
result ok "${VER:--}" "${PREV:--}"
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


def _common(txn_journal: str, root: str, server: ServerCommands) -> str:
    return _fill(
        _COMMON,
        {
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
        checks = " && ".join(join(c) + " >/dev/null 2>&1" for c in command.check) or "false"
        steps.append(
            f'{{ {checks}; }} || {join(command.argv)} >/dev/null 2>"$J/new/err" '
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
            "__PAYLOAD__": PAYLOAD_DIR,
            "__CLEAN_FILE_DIRS__": clean,
            "__STEPS__": "\n".join(steps),
            "__RELOAD_FLAG__": "yes" if txn.reload else "no",
            "__RELOAD_ON_FAIL__": "yes" if txn.reload else "no",
            "__NEXT__": _NEXT if txn.next_files else "",
            # next_files replace NAME/next (restorably); without them a used next key is removed
            "__CONSUME_NEXT__": '"$ROOT/next"' if txn.consume_next and not txn.next_files else "",
            "__KEEP__": str(txn.keep_versions),
        },
    )
    return _common(txn.journal, txn.root, txn.server) + body


def command_dirs(command: EnableCommand) -> list[str]:
    """Directories an enable command adds entries to, taken from its ``test -e PATH`` checks;
    their listing is saved so that undo removes exactly what the command added."""
    dirs: list[str] = []
    for check in command.check:
        if len(check) == 3 and check[0] == "test" and check[1] == "-e":
            d = check_path(check[2], where="enable check").rsplit("/", 1)[0]
            if d and d not in dirs:
                dirs.append(d)
    return dirs


def rollback_script(
    name: str, server: ServerCommands, *, cert_root: str = CERT_ROOT, txn_root: str = TXN_ROOT
) -> str:
    """Undo the last applied transaction of site ``name`` (after a failed verification)."""
    check_name(name)
    return (
        _common(f"{check_path(txn_root)}/{name}", f"{check_path(cert_root)}/{name}", server)
        + _ROLLBACK
    )


@dataclass(frozen=True)
class Outcome:
    """What the remote script reported: ``status`` ok, write_failed, test_failed,
    reload_failed, nothing_to_undo, or unknown (no result line: the script was killed)."""

    status: str
    detail: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def message(self) -> str:
        return " ".join(self.detail).strip()


def parse_outcome(stdout: str) -> Outcome:
    """The last ``@@result`` line of a transaction script's output."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("@@result "):
            parts = line[len("@@result ") :].split(" ", 1)
            rest = parts[1] if len(parts) > 1 else ""
            if parts[0] == "ok":
                return Outcome("ok", tuple(rest.split()))
            return Outcome(parts[0], (rest,) if rest else ())
    return Outcome("unknown", (stdout.strip().splitlines()[-1] if stdout.strip() else "",))


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
