"""Facts shared by the generic modules: a fact is an argv plus a pure parser.

:class:`Fact` runs its argv through a connection and hands the :class:`Result` to ``parse``;
the parsers are plain functions so tests feed them recorded output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from agent.transport.base import Connection, FileStat, Owner, Result

T = TypeVar("T")


@dataclass(frozen=True)
class Fact(Generic[T]):
    """A command whose output, parsed, is one fact about the host."""

    argv: tuple[str, ...]
    parse: Callable[[Result], T]

    def gather(self, conn: Connection, *, become: bool = False) -> T:
        """Run the command (a non-zero exit is for ``parse`` to judge) and parse it."""
        return self.parse(conn.run(list(self.argv), become=become))


@dataclass(frozen=True)
class PathFacts:
    """What is at a path: its stat, its content when asked for and it is a regular file, and
    the numeric ids of the owner the module wants (None when not asked or unknown)."""

    stat: FileStat
    content: bytes | None = None
    want_uid: int | None = None
    want_gid: int | None = None


def parse_id(result: Result) -> int | None:
    """Parse ``id -u NAME`` or ``getent group NAME`` output; None when the name is unknown."""
    if not result.ok:
        return None
    text = result.stdout.strip()
    if ":" in text:  # getent group: name:x:gid:members
        parts = text.split(":")
        text = parts[2] if len(parts) > 2 else ""
    return int(text) if text.isdigit() else None


def user_id(name: str) -> Fact[int | None]:
    return Fact(("id", "-u", "--", name), parse_id)


def group_id(name: str) -> Fact[int | None]:
    return Fact(("getent", "group", "--", name), parse_id)


def path_facts(
    conn: Connection, path: str, *, owner: Owner | None = None, read: bool = False
) -> PathFacts:
    """Stat ``path`` (and read it when ``read`` and it is a file); resolve ``owner`` names.

    Raises:
        CommandError: the host could not be asked.
    """
    st = conn.stat(path)
    content = conn.read(path) if read and st.exists and st.kind == "file" else None
    uid = gid = None
    if owner is not None and owner.user:
        uid = int(owner.user) if owner.user.isdigit() else user_id(owner.user).gather(conn)
    if owner is not None and owner.group:
        gid = int(owner.group) if owner.group.isdigit() else group_id(owner.group).gather(conn)
    return PathFacts(stat=st, content=content, want_uid=uid, want_gid=gid)


def owner_of(value: str | None, where: str = "owner") -> Owner | None:
    """Parse ``"user"``, ``"user:group"`` or ``":group"`` into an :class:`Owner`.

    Raises:
        ValueError: a name with characters no user or group name has.
    """
    if not value:
        return None
    user, _, group = value.partition(":")
    for name in (user, group):
        if name and (name.startswith("-") or not all(c.isalnum() or c in "._-$" for c in name)):
            raise ValueError(f"invalid {where} name {name!r}")
    return Owner(user=user or None, group=group or None)


def attribute_drift(
    facts: PathFacts, mode: int | None, owner: Owner | None
) -> tuple[int | None, Owner | None]:
    """The mode and owner that differ from what ``facts`` show (None where they match).

    Raises:
        ValueError: the owner asked for does not exist on the host.
    """
    st = facts.stat
    new_mode = mode if mode is not None and st.mode != mode else None
    new_owner: Owner | None = None
    if owner is not None:
        if owner.user and facts.want_uid is None:
            raise ValueError(f"no such user {owner.user!r}")
        if owner.group and facts.want_gid is None:
            raise ValueError(f"no such group {owner.group!r}")
        user_drift = owner.user is not None and facts.want_uid != st.uid
        group_drift = owner.group is not None and facts.want_gid != st.gid
        if user_drift or group_drift:
            new_owner = owner
    return new_mode, new_owner
