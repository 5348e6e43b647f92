"""The local transport: the same :class:`Connection` contract on this machine.

Used for ``connection: local`` / ``localhost`` and by tests. With ``root`` set, every path given
to ``read``/``write``/``stat`` is taken relative to that directory (``/etc/nginx/x`` becomes
``<root>/etc/nginx/x``), so modules can be exercised against a scratch tree; commands run
unchanged (their working directory is ``root``).
"""

from __future__ import annotations

import contextlib
import getpass
import grp
import logging
import os
import pwd
import subprocess
from pathlib import Path

from agent.errors import CommandError, ValidationError
from agent.transport.base import Counters, FileStat, Owner, Result
from agent.transport.common import (
    TEMP_PREFIX,
    as_text,
    become_needed,
    command_failed,
    display,
    kind_of,
    temp_name,
)

log = logging.getLogger(__name__)


class LocalConnection:
    """A :class:`~agent.transport.base.Connection` to this machine."""

    def __init__(
        self,
        host: str = "localhost",
        *,
        root: str | os.PathLike[str] | None = None,
        become_user: str = "root",
    ) -> None:
        self.host = host
        self.counters = Counters()
        self.root = str(Path(root).resolve()) if root is not None else None
        self.user = getpass.getuser()
        self.become_user = become_user

    # -- paths -------------------------------------------------------------------------------

    def local_path(self, path: str) -> str:
        """Where ``path`` (as the host sees it) lives on this machine."""
        if "\x00" in path:
            raise ValidationError(f"invalid path {path!r}", where=self.host)
        if self.root is None:
            return path
        if not path.startswith("/"):
            raise ValidationError(f"path must be absolute: {path!r}", where=self.host)
        return self.root + path

    # -- commands ----------------------------------------------------------------------------

    def run(
        self,
        argv: list[str] | tuple[str, ...],
        *,
        stdin: bytes | None = None,
        become: bool = False,
        timeout: float | None = None,
        check: bool = False,
    ) -> Result:
        """Run ``argv`` here (no shell).

        ``become`` runs it as ``become_user`` with ``runuser`` when we are root, else with
        ``sudo -n`` (no password prompt locally).

        Raises:
            CommandError: when ``check`` is true and the command exits non-zero, when it
                runs past ``timeout`` seconds, or when the program does not exist.
        """
        args = [str(a) for a in argv]
        full = list(args)
        if become and become_needed(self.user, self.become_user):
            if os.geteuid() == 0:
                full = ["runuser", "-u", self.become_user, "--", *args]
            else:
                full = ["sudo", "-n", "-u", self.become_user, "--", *args]
        self.counters.commands += 1
        log.debug("%s: run %s", self.host, display(full))
        try:
            proc = subprocess.run(
                full,
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=timeout,
                cwd=self.root,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise CommandError(
                f"{display(args)} timed out after {timeout:g}s",
                host=self.host,
                argv=args,
                exit_code=124,
                stderr=as_text(err.stderr),
            ) from err
        except OSError as err:
            raise CommandError(
                f"cannot run {display(args)}: {err.strerror}",
                host=self.host,
                argv=args,
                exit_code=127,
            ) from err
        result = Result(tuple(args), proc.returncode, as_text(proc.stdout), as_text(proc.stderr))
        if check and not result.ok:
            raise command_failed(self.host, result)
        return result

    # -- files -------------------------------------------------------------------------------

    def read(self, path: str) -> bytes | None:
        """Return the bytes of ``path`` or ``None`` if it does not exist."""
        self.counters.file_ops += 1
        try:
            return Path(self.local_path(path)).read_bytes()
        except FileNotFoundError:
            return None

    def stat(self, path: str) -> FileStat:
        """``lstat`` ``path``; a missing path gives ``FileStat(exists=False)``."""
        self.counters.file_ops += 1
        real = self.local_path(path)
        try:
            st = os.lstat(real)
        except (FileNotFoundError, NotADirectoryError):
            return FileStat(path=path, exists=False)
        kind = kind_of(st.st_mode)
        return FileStat(
            path=path,
            exists=True,
            kind=kind,
            mode=st.st_mode & 0o7777,
            uid=st.st_uid,
            gid=st.st_gid,
            size=st.st_size,
            link_target=os.readlink(real) if kind == "link" else "",
        )

    def write(
        self, path: str, data: bytes, *, mode: int = 0o644, owner: Owner | None = None
    ) -> None:
        """Atomically replace ``path`` with ``data``.

        The temporary file is created with ``O_CREAT|O_EXCL`` and a mode no wider than
        ``mode`` (the umask can only remove bits), set to exactly ``mode`` before the first
        byte is written, synced, chowned when ``owner`` is given, then renamed over ``path``.

        Raises:
            CommandError: when the directory is not writable or the owner does not exist.
        """
        self.counters.file_ops += 1
        real = self.local_path(path)
        tmp = temp_name(os.path.dirname(real) or ".")
        uid, gid = self._ids(owner, path)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode & 0o7777)
        except OSError as err:
            raise CommandError(
                f"cannot write {path}: {err.strerror}", host=self.host, exit_code=1
            ) from err
        try:
            try:
                os.fchmod(fd, mode & 0o7777)
                if uid != -1 or gid != -1:
                    os.fchown(fd, uid, gid)
                    os.fchmod(fd, mode & 0o7777)  # chown may clear set-id bits
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, real)
        except OSError as err:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise CommandError(
                f"cannot write {path}: {err.strerror}", host=self.host, exit_code=1
            ) from err

    def cleanup_temporaries(self, directory: str) -> list[str]:
        """Remove leftover temporary files of earlier interrupted writes in ``directory``.

        Returns:
            The host-side paths removed.
        """
        self.counters.file_ops += 1
        real = self.local_path(directory)
        removed: list[str] = []
        try:
            names = sorted(os.listdir(real))
        except FileNotFoundError:
            return removed
        for name in names:
            if name.startswith(TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(real, name))
                    removed.append(directory.rstrip("/") + "/" + name)
        return removed

    def close(self) -> None:
        """Nothing to release locally."""

    def __enter__(self) -> LocalConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ids(self, owner: Owner | None, path: str) -> tuple[int, int]:
        if owner is None:
            return (-1, -1)
        try:
            uid = pwd.getpwnam(owner.user).pw_uid if owner.user else -1
            gid = grp.getgrnam(owner.group).gr_gid if owner.group else -1
        except KeyError as err:
            raise CommandError(
                f"cannot write {path}: unknown owner {owner.user or ''}:{owner.group or ''}",
                host=self.host,
                exit_code=1,
            ) from err
        return (uid, gid)
