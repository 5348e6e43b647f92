"""Watch every file created under some directories (inotify) and stat each one the moment it
appears, is written, is renamed in, or has its mode changed: a key file ever seen readable by
group or others is a violation.

The one permission watcher of the test suite: a temporary directory for the local transport
(unit), a directory written over SSH, a lab host's tree through ``/proc/<holder>/root``.

New directories are watched as soon as they appear (and scanned, for what was created in them
before the watch was in place). A queue overflow is reported: then nothing can be claimed.
"""

from __future__ import annotations

import ctypes
import os
import select
import stat
import struct
import threading
from dataclasses import dataclass, field

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_Q_OVERFLOW = 0x4000
IN_ISDIR = 0x40000000
MASK = IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_CLOSE_WRITE | IN_MODIFY
_HEADER = struct.Struct("iIII")

_libc = ctypes.CDLL(None, use_errno=True)


def is_key_file(path: str, content: bytes | None) -> bool:
    name = os.path.basename(path)
    return name == "privkey.pem" or name.endswith(".key") or b"PRIVATE KEY" in (content or b"")


@dataclass
class Observation:
    path: str
    mode: int
    key: bool


@dataclass
class KeyFileWatcher:
    roots: list[str]
    seen: list[Observation] = field(default_factory=list)
    overflow: bool = False
    _wds: dict[int, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _fd: int = -1

    def __enter__(self) -> KeyFileWatcher:
        self._fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        for root in self.roots:
            self._watch_tree(root)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._drain()  # what happened just before the block ended
        os.close(self._fd)

    @property
    def violations(self) -> list[Observation]:
        return [o for o in self.seen if o.key and o.mode & 0o077]

    @property
    def modes(self) -> set[int]:
        """Every permission mode any file was seen with."""
        return {o.mode for o in self.seen}

    @property
    def keys_seen(self) -> set[str]:
        return {o.path for o in self.seen if o.key}

    def _add(self, path: str) -> None:
        wd = _libc.inotify_add_watch(self._fd, os.fsencode(path), MASK)
        if wd >= 0:
            self._wds[wd] = path

    def _watch_tree(self, top: str) -> None:
        self._add(top)
        for dirpath, dirnames, filenames in os.walk(top):
            for d in dirnames:
                self._add(os.path.join(dirpath, d))
            for f in filenames:
                self._check(os.path.join(dirpath, f))

    def _check(self, path: str) -> None:
        try:
            st = os.lstat(path)
        except OSError:
            return
        if not stat.S_ISREG(st.st_mode):
            return
        content: bytes | None = None
        try:
            with open(path, "rb") as fh:
                content = fh.read(1 << 16)
        except OSError:
            pass
        # the mode first, the content after: a key written into a file that was open to
        # others at the start is caught by the mode taken at creation
        self.seen.append(Observation(path, stat.S_IMODE(st.st_mode), is_key_file(path, content)))

    def _loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.05)
            if ready:
                self._drain()

    def _drain(self) -> None:
        """Handle every event queued now."""
        while True:
            try:
                data = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                return
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
                name = data[offset + _HEADER.size : offset + _HEADER.size + length].rstrip(b"\0")
                offset += _HEADER.size + length
                if mask & IN_Q_OVERFLOW:
                    self.overflow = True
                    continue
                base = self._wds.get(wd)
                if base is None or not name:
                    continue
                path = os.path.join(base, os.fsdecode(name))
                if mask & IN_ISDIR:
                    if mask & (IN_CREATE | IN_MOVED_TO):
                        self._watch_tree(path)
                else:
                    self._check(path)
