"""Apply :class:`~agent.modules.base.Change` values to one host and journal how to undo them.

The :class:`Connection` offers ``write`` (atomic), ``read``, ``stat`` and ``run``; directory,
symlink, removal and attribute changes are argv commands (``mkdir``, ``ln`` + ``mv -T``,
``rm``, ``chmod``, ``chown``), never shell text.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from agent.errors import CommandError
from agent.modules.base import (
    Change,
    MakeDir,
    NotifyHandler,
    RemovePath,
    RunCommand,
    SetAttributes,
    SwapSymlink,
    WriteFile,
)
from agent.transport.base import Connection, Owner, Result

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Undo:
    """How to reverse one applied change: changes to apply, or why it cannot be reversed."""

    what: str
    changes: tuple[Change, ...] = ()
    impossible: str = ""


def _owner_spec(owner: Owner) -> str:
    return f"{owner.user or ''}:{owner.group or ''}" if owner.group else f"{owner.user or ''}"


def _parent(path: str) -> str:
    head = path.rstrip("/").rpartition("/")[0]
    return head or "/"


class ConnectionApplier:
    """Applies changes through ``conn``; :meth:`rollback` undoes them newest first."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.journal: list[_Undo] = []

    def apply(self, changes: Sequence[Change], *, become: bool = False) -> list[Result | None]:
        """Apply ``changes`` in order (see :class:`agent.modules.base.Applier`).

        Raises:
            CommandError: a command exited non-zero (when it must not) or a file operation
                failed; changes before it stay applied and journaled.
        """
        results: list[Result | None] = []
        for change in changes:
            results.append(self._apply_one(change, become))
        return results

    def _run(self, argv: list[str], become: bool) -> Result:
        return self.conn.run(argv, become=become, check=True)

    def _apply_one(self, change: Change, become: bool) -> Result | None:
        if isinstance(change, NotifyHandler):
            return None
        if isinstance(change, WriteFile):
            self._write_file(change)
        elif isinstance(change, MakeDir):
            self._make_dir(change, become)
        elif isinstance(change, SwapSymlink):
            self._swap_symlink(change, become)
        elif isinstance(change, RemovePath):
            self._remove_path(change, become)
        elif isinstance(change, SetAttributes):
            self._set_attributes(change, become)
        elif isinstance(change, RunCommand):
            return self._run_command(change, become)
        else:
            raise TypeError(f"cannot apply {type(change).__name__}")  # a bug in a module
        return None

    def _write_file(self, change: WriteFile) -> None:
        undo = self._undo_for_path(change.path, change.describe())
        self.conn.write(change.path, change.data, mode=change.mode, owner=change.owner)
        self.journal.append(undo)

    def _make_dir(self, change: MakeDir, become: bool) -> None:
        existed = self.conn.stat(change.path).exists
        self._run(["mkdir", "-p", "-m", f"{change.mode:04o}", "--", change.path], become)
        if change.owner is not None:
            self._run(["chown", _owner_spec(change.owner), "--", change.path], become)
        if not existed:
            self.journal.append(_Undo(change.describe(), (RemovePath(change.path),)))

    def _swap_symlink(self, change: SwapSymlink, become: bool) -> None:
        undo = self._undo_for_path(change.path, change.describe())
        tmp = f"{_parent(change.path)}/.origin-agent-link-{secrets.token_hex(6)}"
        self._run(["ln", "-s", "--", change.target, tmp], become)
        try:
            self._run(["mv", "-T", "--", tmp, change.path], become)
        except CommandError:
            self.conn.run(["rm", "-f", "--", tmp], become=become)
            raise
        self.journal.append(undo)

    def _remove_path(self, change: RemovePath, become: bool) -> None:
        undo = self._undo_for_path(change.path, change.describe())
        # -d: a directory is removed when empty (undo of MakeDir, after its contents)
        self._run(["rm", "-rf" if change.recursive else "-fd", "--", change.path], become)
        self.journal.append(undo)

    def _set_attributes(self, change: SetAttributes, become: bool) -> None:
        st = self.conn.stat(change.path)
        if change.mode is not None:
            self._run(["chmod", f"{change.mode:04o}", "--", change.path], become)
        if change.owner is not None:
            self._run(["chown", _owner_spec(change.owner), "--", change.path], become)
        if st.exists:
            previous = SetAttributes(change.path, st.mode, Owner(str(st.uid), str(st.gid)))
            self.journal.append(_Undo(change.describe(), (previous,)))

    def _run_command(self, change: RunCommand, become: bool) -> Result:
        use_become = become if change.become is None else change.become
        result = self.conn.run(
            change.argv,
            stdin=change.stdin,
            become=use_become,
            timeout=change.timeout,
            check=change.check,
        )
        if change.changed:
            self.journal.append(_Undo(change.describe(), impossible="a command"))
        return result

    def _undo_for_path(self, path: str, what: str) -> _Undo:
        """Capture what is at ``path`` now, so it can be put back."""
        st = self.conn.stat(path)
        if not st.exists:
            return _Undo(what, (RemovePath(path),))
        if st.kind == "link":
            return _Undo(what, (SwapSymlink(path, st.link_target),))
        if st.kind == "file":
            data = self.conn.read(path)
            if data is not None:
                return _Undo(
                    what,
                    (
                        WriteFile(path, data, mode=st.mode),
                        SetAttributes(path, owner=Owner(str(st.uid), str(st.gid))),
                    ),
                )
        return _Undo(what, impossible=f"{path} is a {st.kind or 'special file'}")

    def rollback(self) -> list[str]:
        """Undo every journaled change, newest first.

        Returns:
            One line per change that could not be undone (commands, removed directories,
            or an undo step that itself failed).
        """
        left: list[str] = []
        while self.journal:
            undo = self.journal.pop()
            if undo.impossible:
                left.append(f"{undo.what}: cannot undo {undo.impossible}")
                continue
            depth = len(self.journal)
            try:
                for change in undo.changes:
                    self._apply_one(change, become=False)
            except CommandError as err:
                log.debug("%s: undo of %r failed: %s", self.conn.host, undo.what, err)
                left.append(f"{undo.what}: undo failed: {err}")
            finally:
                del self.journal[depth:]  # the undo steps' own entries
        return left
