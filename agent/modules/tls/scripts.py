"""The shell text of the origin transaction's scripts, filled in by :mod:`.txn` (every
``__NAME__`` placeholder is replaced by a quoted or validated value there; nothing here is
formatted with Python). Kept apart so that the Python reads as Python and the shell as shell.
"""

COMMON = r"""
set -u
trap '' HUP PIPE INT TERM
umask 077
J=__J__
ROOT=__ROOT__
result() { printf '@@result %s\n' "$*"; }
take_lock() {  # one transaction at a time per site, whoever runs it; the holder is named
  [ -d "${J%/*}" ] || mkdir -p "${J%/*}" 2>/dev/null
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

APPLY = r"""
take_lock
echo @@step locked
VER=__VER__
N=0
log() { printf '%s\n' "$*" >> "$J/new/out"; }
rm_any() {  # rm -rf the arguments that exist (no process when none does)
  for p; do if [ -e "$p" ] || [ -L "$p" ]; then rm -rf -- "$@"; return; fi; done
}
rm_any "$ROOT"/.origin-agent-tmp-* "$J"/new "$J"/.origin-agent-tmp-* __CLEAN_FILE_DIRS__ 2>/dev/null
# $J and $J/new 0700 (made or set: one process); $ROOT made only when missing
if ! ERR=$({ { [ -d "$ROOT" ] || mkdir -p "$ROOT"; } && install -d -m 0700 "$J" "$J/new"; } 2>&1); then
  result write_failed "$(printf '%s\n' "$ERR" | tail -n 1)"; exit 0
fi
: > "$J/new/journal"
P="$ROOT/__PAYLOAD__"
# The payload unpacks as $P/{v,f,n,current}: v (the version, 0755), n and current (a link to the
# version) are renamed into place.
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
# current as the gather saw it (no process) when it still leads there, else read again
OLD=__SEEN__
if [ -z "$OLD" ] || [ ! -L "$ROOT/current" ] || [ ! "$ROOT/current" -ef "$ROOT/$OLD" ]; then
  OLD=$(readlink "$ROOT/current" 2>/dev/null || true)
fi
if [ -n "$VER" ]; then
  mv -T "$P/v" "$ROOT/$VER" 2>"$J/new/err" || fail write_failed "$(tail -n 1 "$J/new/err")"
  journal newdir "$ROOT/$VER" -
fi
__STEPS__
echo @@step written
if [ -n "$VER" ]; then
  PREV=$OLD CUR=$VER
  { if [ -n "$PREV" ]; then journal link "$ROOT/current" "$PREV"; else backup "$ROOT/current" file; fi &&
    mv -fT "$P/current" "$ROOT/current"; } 2>"$J/new/err" || fail write_failed "$(tail -n 1 "$J/new/err")"
else
  PREV="" CUR=$OLD
fi
echo @@step switched
if ! server_test > "$J/new/test" 2>&1; then
  fail test_failed "$(grep -v '^$' "$J/new/test" | tail -n 3 | tr '\n' ' ')"
fi
echo @@step tested
if [ "__RELOAD_FLAG__" = yes ]; then
  # where the server's error log stands: a failed verification shows what it said since
  E=__ERRLOG__; if [ -n "$E" ] && [ -f "$E" ]; then wc -c < "$E" > "$J/new/errlog-offset"; fi
  if ! server_reload > "$J/new/reload" 2>&1; then
    if ! server_start >> "$J/new/reload" 2>&1; then
      fail reload_failed "$(grep -v '^$' "$J/new/reload" | tail -n 2 | tr '\n' ' ')"
    fi
  fi
fi
echo @@step reloaded
__NEXT__
printf '%s\n' __TOKEN__ > "$J/new/token"
# Keep the newest __KEEP__ versions (names sort by time) and always the current and previous one;
# the excess goes in the same rm as the payload's remains and the previous journal.
set --
for v in "$ROOT"/[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-?*; do
  case "${v##*/}" in *Z-*[!0-9a-f]*) ;; *) [ -d "$v" ] && set -- "$@" "$v" ;; esac
done
I=$# EXCESS=$(($# - __KEEP__))
while [ "$I" -gt 0 ]; do  # the oldest EXCESS versions, but never CUR or PREV, stay in "$@"
  v=$1; shift; I=$((I - 1))
  if [ "$EXCESS" -gt 0 ]; then
    EXCESS=$((EXCESS - 1))
    case "${v##*/}" in "$CUR"|"$PREV") ;; *) set -- "$@" "$v" ;; esac
  fi
done
rm -rf -- "$P" "$J/last" __CONSUME_NEXT__ "$@"
mv -T "$J/new" "$J/last"
__PROBES__
result ok "${VER:--}" "${PREV:--}"
"""

# Handshakes from the origin itself (verify_from: origin): each name until the expected
# certificate is served three times in a row (bounded: 100 tries), then what was served.
PROBE = r"""
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
NEXT = r"""
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

ROLLBACK = r"""
take_lock
if [ ! -f "$J/last/journal" ]; then result nothing_to_undo; exit 0; fi
T=; read -r T < "$J/last/token" 2>/dev/null
if [ -n __TOKEN__ ] && [ "$T" != __TOKEN__ ]; then  # another transaction came after ours
  H=; read -r H < "$J.holder" 2>/dev/null; result superseded "${H:-by another transaction}"; exit 0
fi
E=__ERRLOG__; OFF=
if [ -n "$E" ] && [ -f "$E" ] && read -r OFF < "$J/last/errlog-offset" 2>/dev/null; then
  case "$OFF" in ""|*[!0-9]*) ;; *)
    echo @@errlog; tail -c +$((OFF + 1)) "$E" | tail -c 8192 | base64 -w0; echo ;;
  esac
fi
undo "$J/last"
mv -T "$J/last" "$J/undone.$(date +%s)" 2>/dev/null || rm -rf "$J/last"
if ! server_test > "$J/rollback-test" 2>&1; then
  result test_failed "$(grep -v '^$' "$J/rollback-test" | tail -n 3 | tr '\n' ' ')"; exit 0
fi
reload_or_start
ls -1d "$J"/undone.* 2>/dev/null | sort | head -n -3 | while read -r old; do rm -rf "$old"; done
result ok "$(readlink "$ROOT/current" 2>/dev/null || echo -)"
"""

CLEANUP = r"""
take_lock
set -- "$ROOT"/.origin-agent-tmp-*
if [ -e "$1" ] || [ -L "$1" ]; then rm -rf -- "$@"; fi
result ok
"""
