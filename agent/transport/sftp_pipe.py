"""Pipelined SFTP requests on top of paramiko's SFTP channel.

Why not ``SFTPClient.open``: it cannot give a file its mode at creation (the OPEN attributes
are always empty), and it waits for a reply to every request. Here a write is three round
trips whatever its size (OPEN with the mode and O_EXCL; then FSETSTAT, WRITEs, fsync and CLOSE
pipelined; then posix-rename), a read of a file up to 256 KiB is two, a stat one. The server
(OpenSSH ``sftp-server``) answers requests in order, so a FSETSTAT sent before the first WRITE
is applied before any byte lands.

This uses paramiko's request plumbing (``_async_request``/``_read_response``), the same calls
``SFTPFile`` makes; it is kept to this one module.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paramiko
from paramiko import sftp as proto
from paramiko.message import Message
from paramiko.sftp_attr import SFTPAttributes

int64: Callable[[int], Any] = proto.int64
attrs_from_msg: Callable[[Message], SFTPAttributes] = SFTPAttributes._from_msg  # type: ignore[attr-defined]

CHUNK = 32768  # SFTP read/write request size every server accepts
READ_BATCH = 8  # read requests in flight per round trip

_ERRNO = {
    proto.SFTP_NO_SUCH_FILE: errno.ENOENT,
    proto.SFTP_PERMISSION_DENIED: errno.EACCES,
    proto.SFTP_OP_UNSUPPORTED: errno.EOPNOTSUPP,
}


class SFTPStatusError(OSError):
    """A request answered with an error status (``errno`` mapped where SFTP allows)."""

    def __init__(self, code: int, text: str, request: str) -> None:
        super().__init__(_ERRNO.get(code, errno.EIO), f"{request}: {text or 'failure'}")
        self.code = code
        self.request = request


@dataclass
class Reply:
    kind: int
    msg: Message

    def check(self, request: str) -> None:
        """Raise if this is an error status (OK and EOF pass)."""
        if self.kind == proto.CMD_STATUS:
            code = self.msg.get_int()
            text = self.msg.get_text()
            if code not in (proto.SFTP_OK, proto.SFTP_EOF):
                raise SFTPStatusError(code, text, request)

    def status(self) -> int:
        """The status code of a STATUS reply (-1 for any other kind); consumes the message."""
        return self.msg.get_int() if self.kind == proto.CMD_STATUS else -1


class _Collector:
    """Receives replies to pipelined requests (paramiko calls ``_async_response``)."""

    def __init__(self) -> None:
        self.replies: dict[int, Reply] = {}

    def _async_response(self, t: int, msg: Message, num: int) -> None:
        self.replies[num] = Reply(t, msg)


class Pipe:
    """Batches of SFTP requests sent together and awaited together (one round trip)."""

    def __init__(self, client: paramiko.SFTPClient) -> None:
        self.client = client
        self.round_trips = 0

    def batch(self, requests: list[tuple[int, tuple[Any, ...]]]) -> list[Reply]:
        """Send every request, then wait for all replies; returns them in request order."""
        collector = _Collector()
        client: Any = self.client  # paramiko's request plumbing is untyped
        nums = [client._async_request(collector, kind, *args) for kind, args in requests]
        self.round_trips += 1
        while len(collector.replies) < len(nums):
            client._read_response()
        return [collector.replies[n] for n in nums]

    def send_only(self, kind: int, *args: Any) -> None:
        """Send a request whose reply is not needed (paramiko discards it when it arrives)."""
        client: Any = self.client
        client._async_request(type(None), kind, *args)

    # -- operations ----------------------------------------------------------------------------

    def open(self, path: str, flags: int, mode: int | None = None) -> bytes:
        attrs = SFTPAttributes()
        if mode is not None:
            attrs.st_mode = mode
        (reply,) = self.batch([(proto.CMD_OPEN, (path, flags, attrs))])
        reply.check(f"open {path}")
        if reply.kind != proto.CMD_HANDLE:
            raise SFTPStatusError(proto.SFTP_BAD_MESSAGE, "expected a handle", f"open {path}")
        handle: bytes = reply.msg.get_binary()
        return handle

    def read_file(self, path: str) -> bytes:
        """Read a whole file; ``FileNotFoundError``-like ``SFTPStatusError`` when missing."""
        handle = self.open(path, proto.SFTP_FLAG_READ)
        data = bytearray()
        try:
            while True:
                offsets = [len(data) + i * CHUNK for i in range(READ_BATCH)]
                replies = self.batch([(proto.CMD_READ, (handle, int64(o), CHUNK)) for o in offsets])
                done = False
                for offset, reply in zip(offsets, replies, strict=True):
                    if reply.kind == proto.CMD_STATUS:
                        code = reply.status()
                        if code != proto.SFTP_EOF:
                            raise SFTPStatusError(code, "", f"read {path}")
                        done = True  # EOF at or before ``offset``
                        break
                    if offset != len(data):
                        break  # an earlier short read: ask again from where we are
                    data += reply.msg.get_string()
                if done:
                    return bytes(data)
        finally:
            self.send_only(proto.CMD_CLOSE, handle)

    def write_new(self, path: str, data: bytes, mode: int, uid: int, gid: int) -> None:
        """Create ``path`` (O_EXCL) with ``mode`` and write ``data``; sync and close it."""
        flags = proto.SFTP_FLAG_WRITE | proto.SFTP_FLAG_CREATE | proto.SFTP_FLAG_EXCL
        handle = self.open(path, flags, mode)
        requests: list[tuple[int, tuple[Any, ...]]] = []
        if uid != -1 or gid != -1:
            owner = SFTPAttributes()
            owner.st_uid = uid & 0xFFFFFFFF
            owner.st_gid = gid & 0xFFFFFFFF
            requests.append((proto.CMD_FSETSTAT, (handle, owner)))
        perm = SFTPAttributes()
        perm.st_mode = mode
        requests.append((proto.CMD_FSETSTAT, (handle, perm)))  # exact mode despite the umask
        for offset in range(0, len(data), CHUNK):
            requests.append(
                (proto.CMD_WRITE, (handle, int64(offset), data[offset : offset + CHUNK]))
            )
        fsync_at = len(requests)
        requests.append((proto.CMD_EXTENDED, ("fsync@openssh.com", handle)))
        requests.append((proto.CMD_CLOSE, (handle,)))
        replies = self.batch(requests)
        for i, reply in enumerate(replies):
            if i == fsync_at and reply.kind == proto.CMD_STATUS:
                code = reply.status()
                if code not in (proto.SFTP_OK, proto.SFTP_OP_UNSUPPORTED):
                    raise SFTPStatusError(code, "", f"fsync {path}")
                continue
            reply.check(f"write {path}")

    def rename(self, src: str, dst: str) -> None:
        (reply,) = self.batch([(proto.CMD_EXTENDED, ("posix-rename@openssh.com", src, dst))])
        reply.check(f"rename {src} to {dst}")

    def remove(self, paths: list[str]) -> list[Reply]:
        return self.batch([(proto.CMD_REMOVE, (p,)) for p in paths]) if paths else []

    def lstat(self, path: str) -> tuple[SFTPAttributes | None, str]:
        """``lstat`` plus ``readlink`` in one round trip; ``(None, "")`` when missing."""
        st, link = self.batch([(proto.CMD_LSTAT, (path,)), (proto.CMD_READLINK, (path,))])
        if st.kind == proto.CMD_STATUS:
            code = st.status()
            if code == proto.SFTP_NO_SUCH_FILE:
                return (None, "")
            raise SFTPStatusError(code, "", f"lstat {path}")
        attrs = attrs_from_msg(st.msg)
        target = ""
        if link.kind == proto.CMD_NAME and link.msg.get_int() >= 1:
            target = link.msg.get_string().decode("utf-8", errors="surrogateescape")
        return (attrs, target)
