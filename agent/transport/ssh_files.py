"""File operations of the SSH transport when they need ``become`` (through sudo'd commands),
and the mapping of SFTP failures to user-facing errors.

With ``become``, SFTP runs as the login user and cannot write root's files, so each operation is
one command run through sudo: a write pipes the data into ``cat`` under a umask that gives the
temporary file its final mode at creation (``set -C``: O_EXCL), then chown, chmod, sync and
``mv`` over the target.
"""

from __future__ import annotations

import contextlib
import stat as stat_mod
from collections.abc import Iterator
from typing import TYPE_CHECKING

import paramiko

from agent.errors import CommandError, ConnectError
from agent.transport.base import FileStat, Owner
from agent.transport.common import TEMP_PREFIX, as_text, kind_of, split_path, temp_name

if TYPE_CHECKING:
    from agent.transport.ssh import SSHConnection

_MISSING = 3  # exit code our scripts use for "no such path"

_READ = 'if [ -e "$1" ] || [ -L "$1" ]; then exec cat -- "$1"; fi; exit 3'
_STAT = (
    '[ -e "$1" ] || [ -L "$1" ] || exit 3; stat -c "%f %u %g %s" -- "$1"; '
    'if [ -L "$1" ]; then readlink -- "$1"; fi'
)
_WRITE = (
    'set -eC; umask "$5"; trap \'rm -f -- "$1"\' EXIT; cat > "$1"; '
    '[ -z "$4" ] || chown -- "$4" "$1"; chmod -- "$3" "$1"; sync -- "$1" 2>/dev/null || :; '
    'mv -f -- "$1" "$2"'
)
_CLEAN = 'find "$1" -maxdepth 1 -type f -name "$2*" -print -delete'


@contextlib.contextmanager
def sftp_errors(conn: SSHConnection, op: str, path: str) -> Iterator[None]:
    """Turn SFTP/socket failures into ``CommandError`` (file problems) or ``ConnectError``."""
    try:
        yield
    except (paramiko.SSHException, EOFError) as err:
        raise ConnectError(
            f"connection lost during {op} {path}: {type(err).__name__}", host=conn.host
        ) from err
    except OSError as err:
        reason = err.strerror or str(err)
        raise CommandError(f"cannot {op} {path}: {reason}", host=conn.host, exit_code=1) from err


class SudoFiles:
    """read/stat/write/cleanup as the become user, one sudo'd command each."""

    def __init__(self, conn: SSHConnection) -> None:
        self.conn = conn

    def _sh(self, script: str, *args: str, stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
        return self.conn.exec_bytes(("sh", "-c", script, "sh", *args), stdin=stdin, become=True)

    def _fail(self, op: str, path: str, code: int, err: bytes) -> CommandError:
        text = as_text(err).strip()
        last = text.splitlines()[-1] if text else f"exit {code}"
        return CommandError(
            f"cannot {op} {path}: {last}", host=self.conn.host, exit_code=code, stderr=text
        )

    def read(self, path: str) -> bytes | None:
        code, out, err = self._sh(_READ, path)
        if code == _MISSING and not err:
            return None
        if code != 0:
            raise self._fail("read", path, code, err)
        return out

    def stat(self, path: str) -> FileStat:
        code, out, err = self._sh(_STAT, path)
        if code == _MISSING and not err:
            return FileStat(path=path, exists=False)
        if code != 0:
            raise self._fail("stat", path, code, err)
        first, _, rest = as_text(out).partition("\n")
        raw_mode, uid, gid, size = first.split()
        st_mode = int(raw_mode, 16)
        link = rest[:-1] if rest.endswith("\n") else rest
        return FileStat(
            path=path,
            exists=True,
            kind=kind_of(st_mode),
            mode=stat_mod.S_IMODE(st_mode),
            uid=int(uid),
            gid=int(gid),
            size=int(size),
            link_target=link if stat_mod.S_ISLNK(st_mode) else "",
        )

    def write(self, path: str, data: bytes, *, mode: int, owner: Owner | None) -> None:
        directory, _ = split_path(path)
        tmp = temp_name(directory)
        chown = ""
        if owner is not None and (owner.user or owner.group):
            chown = (owner.user or "") + (f":{owner.group}" if owner.group else "")
        umask = f"{~mode & 0o777:03o}"
        code, _, err = self._sh(_WRITE, tmp, path, f"{mode & 0o7777:04o}", chown, umask, stdin=data)
        if code != 0:
            raise self._fail("write", path, code, err)

    def cleanup(self, directory: str) -> list[str]:
        code, out, err = self._sh(_CLEAN, directory, TEMP_PREFIX)
        if code != 0:
            if b"No such file" in err:
                return []
            raise self._fail("clean", directory, code, err)
        return [ln for ln in as_text(out).splitlines() if ln]
