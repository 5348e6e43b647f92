"""A fault hook at a chosen moment of the origin transaction.

:class:`HookedConnection` is a real :class:`~agent.transport.base.Connection` around the real
SSH connection. When the transaction script goes by, it makes the script pause at the chosen
moment (a marker file and a bounded wait for a go file, inserted at a fixed point of the
script), injects the fault from the test side while the script waits, then lets it go on.
Everything else is forwarded untouched.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.lab import LabHost
from agent.modules.tls import txn
from agent.transport.base import Connection, Counters, FileStat, Owner, Result

# Where each moment is in the transaction script: the pause goes just before the script reports
# a named checkpoint (txn.CHECKPOINTS). "after-staging": the version directory and the site
# files are in place, ``current`` not yet swapped; "after-swap": swapped, config test and
# reload not run.
ANCHORS = {
    "after-staging": txn.checkpoint_line("written"),
    "after-swap": txn.checkpoint_line("switched"),
}
MOMENTS = ("before-connect", *ANCHORS)


def is_transaction(argv: list[str] | tuple[str, ...]) -> bool:
    return (
        len(argv) >= 3
        and argv[0] == "sh"
        and argv[1] == "-c"
        and "install_link" in argv[2]
        and "@@result" in argv[2]
        and "server_test" in argv[2]
    )


class HookedConnection:
    """Forwards to ``inner``; pauses the first transaction script at ``moment`` and runs
    ``inject`` while it waits."""

    def __init__(
        self, inner: Connection, lab_host: LabHost, moment: str, inject: Callable[[], None]
    ) -> None:
        if moment not in ANCHORS:
            raise ValueError(f"no anchor for moment {moment!r}")
        self.inner = inner
        self.lab_host = lab_host
        self.moment = moment
        self.inject = inject
        self.fired = False
        self.inject_error: BaseException | None = None
        self.host: str = inner.host
        self.counters: Counters = inner.counters

    def _pause(self, tag: str) -> str:
        wait, go = f"/run/oa-hook-{tag}.wait", f"/run/oa-hook-{tag}.go"
        return (
            f"touch {wait}; i=0; while [ ! -e {go} ] && [ $i -lt 600 ]; do sleep 0.05; "
            f"i=$((i + 1)); done; rm -f {wait} {go}\n"
        )

    def _injector(self, tag: str) -> None:
        wait = Path(self.lab_host.path(f"/run/oa-hook-{tag}.wait"))
        go = self.lab_host.path(f"/run/oa-hook-{tag}.go")
        deadline = time.monotonic() + 30
        while not wait.exists():
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        try:
            self.inject()
        except BaseException as err:  # reported by the test, never swallowed
            self.inject_error = err
        finally:
            os.close(os.open(go, os.O_WRONLY | os.O_CREAT, 0o600))

    def run(
        self,
        argv: list[str] | tuple[str, ...],
        *,
        stdin: bytes | None = None,
        become: bool = False,
        timeout: float | None = None,
        check: bool = False,
    ) -> Result:
        if self.fired or not is_transaction(argv):
            return self.inner.run(argv, stdin=stdin, become=become, timeout=timeout, check=check)
        self.fired = True
        script = argv[2]
        anchor = ANCHORS[self.moment]
        if script.count(anchor) != 1:
            raise AssertionError(
                f"the transaction script changed: anchor for {self.moment} not found"
            )
        tag = f"{os.getpid()}-{threading.get_ident()}"
        script = script.replace(anchor, self._pause(tag) + anchor)
        worker = threading.Thread(target=self._injector, args=(tag,), daemon=True)
        worker.start()
        try:
            return self.inner.run(
                [argv[0], argv[1], script, *argv[3:]],
                stdin=stdin,
                become=become,
                timeout=timeout,
                check=check,
            )
        finally:
            worker.join(timeout=40)

    def read(self, path: str) -> bytes | None:
        return self.inner.read(path)

    def write(
        self, path: str, data: bytes, *, mode: int = 0o644, owner: Owner | None = None
    ) -> None:
        self.inner.write(path, data, mode=mode, owner=owner)

    def stat(self, path: str) -> FileStat:
        return self.inner.stat(path)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> object:  # e.g. ``address``, read by the verifier
        return getattr(self.inner, name)
