"""The SSH transport (paramiko): one connection per host, reused for the whole run.

Commands are argv lists quoted by :func:`agent.transport.quote.join`. ``become`` wraps them in
``sudo -S`` with the password (from the environment variable named by
``become_password_env``) written on stdin only after sudo's own prompt appeared, never on a
command line and never into the command's input (see :mod:`agent.transport.ssh_channel`).
Files go over one cached SFTP channel with pipelined requests (see
:mod:`agent.transport.sftp_pipe`); when file operations need ``become`` (the spec says
``become`` and we log in as someone else) they go through sudo'd commands instead, with the
same guarantees (mode from the first byte, atomic rename).
"""

from __future__ import annotations

import logging
import stat as stat_mod
import threading

import paramiko

from agent.errors import CommandError, ConnectError
from agent.transport.base import Counters, FileStat, Owner, Result
from agent.transport.common import (
    TEMP_PREFIX,
    as_text,
    become_needed,
    command_failed,
    command_line,
    display,
    kind_of,
    new_marker,
    split_path,
    temp_name,
)
from agent.transport.sftp_pipe import Pipe
from agent.transport.spec import ConnectionSpec
from agent.transport.ssh_channel import converse
from agent.transport.ssh_connect import open_client, password_from_env
from agent.transport.ssh_files import SudoFiles, sftp_errors

log = logging.getLogger(__name__)


class SSHConnection:
    """A :class:`~agent.transport.base.Connection` over SSH. Use :meth:`open`."""

    def __init__(
        self,
        spec: ConnectionSpec,
        client: paramiko.SSHClient,
        jumps: list[paramiko.SSHClient] | None = None,
    ) -> None:
        self.spec = spec
        self.host = spec.name
        self.counters = Counters()
        self._client = client
        self.jumps = jumps or []
        transport = client.get_transport()
        self.user: str = (transport.get_username() if transport else None) or spec.user
        self._sftp: paramiko.SFTPClient | None = None
        self._pipe: Pipe | None = None
        self._lock = threading.RLock()
        self._ids: dict[tuple[str, str], int] = {}
        self._files_become = spec.become and become_needed(self.user, spec.become_user)
        self._sudo_files = SudoFiles(self)

    @classmethod
    def open(
        cls,
        spec: ConnectionSpec,
        *,
        accept_new_host_keys: bool = False,
        config: paramiko.SSHConfig | None = None,
    ) -> SSHConnection:
        """Connect and authenticate (see :mod:`agent.transport.ssh_connect`).

        Raises:
            ConnectError: unreachable, timed out, or authentication failed.
            HostKeyError: unknown host key (unless accepted) or a changed one.
        """
        client, jumps = open_client(spec, accept_new_host_keys=accept_new_host_keys, config=config)
        return cls(spec, client, jumps)

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
        """Run ``argv`` on the host; ``become`` (or the spec's ``become``) runs it through sudo.

        Raises:
            CommandError: ``check`` and a non-zero exit; a timeout; sudo refusing to switch user.
            ConnectError: the connection was lost.
        """
        args = tuple(str(a) for a in argv)
        code, out, err = self.exec_bytes(
            args, stdin=stdin, become=become or self.spec.become, timeout=timeout
        )
        result = Result(args, code, as_text(out), as_text(err))
        if check and not result.ok:
            raise command_failed(self.host, result)
        return result

    def exec_bytes(
        self,
        args: tuple[str, ...],
        *,
        stdin: bytes | None = None,
        become: bool = False,
        timeout: float | None = None,
    ) -> tuple[int, bytes, bytes]:
        """Run ``args`` and return ``(exit code, stdout bytes, stderr bytes)``.

        Raises:
            CommandError: a timeout, or sudo refusing to switch user.
            ConnectError: the connection was lost.
        """
        become_user = (
            self.spec.become_user
            if become and become_needed(self.user, self.spec.become_user)
            else None
        )
        password: str | None = None
        if become_user is not None and self.spec.become_password_env:
            try:
                password = password_from_env(
                    self.host, self.spec.become_password_env, "become_password_env"
                )
            except ConnectError as err:
                raise CommandError(err.message, host=self.host, argv=args) from None
        marker = new_marker()
        line = command_line(args, become_user=become_user, marker=marker)
        with self._lock:
            self.counters.commands += 1
            log.debug("%s: run %s", self.host, display(args))
            try:
                chan = self._transport().open_session(timeout=self.spec.connect_timeout)
            except (paramiko.SSHException, OSError, EOFError) as err:
                raise self._lost(err) from err
            try:
                chan.exec_command(line)
                return converse(
                    chan, args, stdin or b"", become_user, password, marker, timeout, host=self.host
                )
            except (paramiko.SSHException, OSError, EOFError) as err:
                raise self._lost(err) from err
            finally:
                chan.close()

    # -- files -------------------------------------------------------------------------------

    def read(self, path: str) -> bytes | None:
        """Return the bytes of ``path`` or ``None`` if it does not exist.

        Raises:
            CommandError: the file exists but cannot be read.
        """
        if self._files_become:
            return self._sudo_files.read(path)
        with self._lock, sftp_errors(self, "read", path):
            pipe = self._pipe_for()
            before = pipe.round_trips
            try:
                return pipe.read_file(path)
            except OSError as err:
                if err.errno == 2:
                    return None
                raise
            finally:
                self.counters.file_ops += pipe.round_trips - before

    def stat(self, path: str) -> FileStat:
        """``lstat`` ``path`` (one round trip); missing gives ``FileStat(exists=False)``."""
        if self._files_become:
            return self._sudo_files.stat(path)
        with self._lock, sftp_errors(self, "stat", path):
            pipe = self._pipe_for()
            self.counters.file_ops += 1
            attrs, target = pipe.lstat(path)
        if attrs is None:
            return FileStat(path=path, exists=False)
        st_mode = attrs.st_mode or 0
        return FileStat(
            path=path,
            exists=True,
            kind=kind_of(st_mode),
            mode=stat_mod.S_IMODE(st_mode),
            uid=attrs.st_uid if attrs.st_uid is not None else -1,
            gid=attrs.st_gid if attrs.st_gid is not None else -1,
            size=attrs.st_size or 0,
            link_target=target if stat_mod.S_ISLNK(st_mode) else "",
        )

    def write(
        self, path: str, data: bytes, *, mode: int = 0o644, owner: Owner | None = None
    ) -> None:
        """Atomically replace ``path``: a ``.origin-agent-tmp-*`` file created with O_EXCL and
        ``mode`` in the same directory, written, synced, chowned, renamed over ``path``.

        Raises:
            CommandError: the directory is not writable, the owner is unknown, or a step failed.
        """
        if self._files_become:
            self._sudo_files.write(path, data, mode=mode, owner=owner)
            return
        uid, gid = self._owner_ids(owner)
        directory, _ = split_path(path)
        tmp = temp_name(directory)
        with self._lock, sftp_errors(self, "write", path):
            pipe = self._pipe_for()
            before = pipe.round_trips
            try:
                try:
                    pipe.write_new(tmp, data, mode & 0o7777, uid, gid)
                    pipe.rename(tmp, path)
                except OSError:
                    pipe.remove([tmp])
                    raise
            finally:
                self.counters.file_ops += pipe.round_trips - before

    def cleanup_temporaries(self, directory: str) -> list[str]:
        """Remove ``.origin-agent-tmp-*`` leftovers of interrupted writes in ``directory``."""
        if self._files_become:
            return self._sudo_files.cleanup(directory)
        with self._lock, sftp_errors(self, "list", directory):
            sftp = self._sftp_client()
            self.counters.file_ops += 1
            try:
                names = sftp.listdir(directory)
            except FileNotFoundError:
                return []
            paths = [
                f"{directory.rstrip('/')}/{n}" for n in sorted(names) if n.startswith(TEMP_PREFIX)
            ]
            pipe = self._pipe_for()
            if paths:
                self.counters.file_ops += 1
            replies = pipe.remove(paths)
            return [p for p, r in zip(paths, replies, strict=True) if r.status() == 0]

    # -- plumbing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close SFTP, the session and any jump hosts (idempotent)."""
        with self._lock:
            if self._sftp is not None:
                self._sftp.close()
                self._sftp = None
                self._pipe = None
            self._client.close()
            for jump in reversed(self.jumps):
                jump.close()
            self.jumps = []

    def __enter__(self) -> SSHConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transport(self) -> paramiko.Transport:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise ConnectError("connection is closed", host=self.host)
        return transport

    def _sftp_client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = paramiko.SFTPClient.from_transport(self._transport())
            except (paramiko.SSHException, OSError, EOFError) as err:
                raise ConnectError(f"cannot open SFTP: {err}", host=self.host) from err
            if self._sftp is None:
                raise ConnectError("cannot open SFTP", host=self.host)
            self.counters.extra["sftp_sessions"] = self.counters.extra.get("sftp_sessions", 0) + 1
        return self._sftp

    def _pipe_for(self) -> Pipe:
        if self._pipe is None:
            self._pipe = Pipe(self._sftp_client())
        return self._pipe

    def _owner_ids(self, owner: Owner | None) -> tuple[int, int]:
        """Numeric ids for ``owner`` (looked up once per name per connection)."""
        if owner is None:
            return (-1, -1)
        return (self._lookup_id("passwd", owner.user), self._lookup_id("group", owner.group))

    def _lookup_id(self, database: str, name: str | None) -> int:
        if not name:
            return -1
        if name.isdigit():
            return int(name)
        key = (database, name)
        if key not in self._ids:
            result = self.run(["getent", database, name])
            fields = result.stdout.split(":")
            if not result.ok or len(fields) < 3 or not fields[2].isdigit():
                kind = "user" if database == "passwd" else "group"
                raise CommandError(
                    f"unknown {kind} {name!r}",
                    host=self.host,
                    argv=result.argv,
                    exit_code=result.exit_code,
                )
            self._ids[key] = int(fields[2])
        return self._ids[key]

    def _lost(self, err: BaseException) -> ConnectError:
        return ConnectError(f"connection lost: {type(err).__name__}: {err}", host=self.host)
