"""One lab host: its namespace holder, the commands run inside it, its sshd and web server.

A host is recorded in ``lab.json`` as a :class:`LabHost`; everything about it that runs is
found through its holder process (``nsenter`` into its mount and UTS namespaces, its files
under ``/proc/<holder>/root``) and its pid files, and stopped by PID (:mod:`agent.lab.procs`).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent.errors import LabError
from agent.lab import procs

Server = Literal["nginx", "apache", "none"]
SSHD_PID = "/run/sshd.pid"
SERVER_PID = {"nginx": "/run/nginx.pid", "apache": "/run/apache2/apache2.pid"}
PID_FILES = (SERVER_PID["nginx"], SERVER_PID["apache"], SSHD_PID)


@dataclass
class LabHost:
    """One lab host, as recorded in ``lab.json``."""

    name: str
    index: int
    address: str
    server: Server
    dir: str
    holder_pid: int = 0
    holder_start: int = 0
    mnt_ns: int = 0

    def alive(self) -> bool:
        """The host's namespace holder is the process we started."""
        return bool(self.holder_pid) and procs.start_time(self.holder_pid) == self.holder_start

    def exec(
        self,
        argv: Sequence[str],
        input: bytes | None = None,
        *,
        check: bool = False,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``argv`` inside this host (its files, its hostname; the machine's network)."""
        if not self.alive():
            raise LabError("host is not running", where=self.name)
        cmd = ["nsenter", "-t", str(self.holder_pid), "-m", "-u", "--", *argv]
        return subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            check=check,
            timeout=timeout,
            start_new_session=True,
        )

    def path(self, path: str) -> str:
        """The machine-side path of ``path`` as this host sees it."""
        return f"/proc/{self.holder_pid}/root{path}"

    def pid_files(self) -> list[str]:
        """Machine-side paths of every pid file a daemon of this host may write."""
        return [self.path(p) for p in PID_FILES]

    def pids(self) -> list[int]:
        """Every process living in this host (its mount namespace)."""
        return procs.pids_in(self.mnt_ns)

    def sshd_pid(self) -> int | None:
        return procs.pid_in(self.path(SSHD_PID), self.mnt_ns)

    def server_pid(self) -> int | None:
        """PID of the web server's master process, or None if it is not running."""
        if self.server == "none":
            return None
        return procs.pid_in(self.path(SERVER_PID[self.server]), self.mnt_ns)

    def start_sshd(self, wait: float = 5.0) -> None:
        self.exec(["/usr/sbin/sshd"], check=True)
        if wait:
            procs.wait_port(self.address, 22, wait, self.name)

    def stop_sshd(self) -> None:
        """Stop the host's sshd (a fault: the host becomes unreachable)."""
        pid = self.sshd_pid()
        if pid:
            procs.terminate([pid])

    def start_server(self, wait: float = 5.0) -> None:
        if self.server == "nginx":
            self.exec(["/usr/sbin/nginx"], check=True)
        elif self.server == "apache":
            self.exec(["/usr/sbin/apache2ctl", "start"], check=True)
        if wait and self.server != "none":
            deadline = time.monotonic() + wait
            while not self.server_settled() and time.monotonic() < deadline:
                time.sleep(0.02)
            procs.wait_port(self.address, 80, max(0.5, deadline - time.monotonic()), self.name)

    def server_settled(self) -> bool:
        """The master wrote its pid file and has forked its workers (signals such as a reload
        sent earlier could be lost in start-up)."""
        pid = self.server_pid()
        if pid is None:
            return False
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return False
        return bool(children)

    def stop_server(self) -> None:
        pid = self.server_pid()
        if pid:
            procs.terminate([pid])

    def memory_kib(self) -> int:
        """Resident memory of every process in this host, in KiB."""
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total
