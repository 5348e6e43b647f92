"""A fleet beside the lab (``origin-agent lab up N --redis --workers W``): a local redis-server
with a random password on a free loopback port, and W ``origin-agent worker`` processes, each
with its own state directory under the lab's. What was started is recorded in ``fleet.json``
(PID and start time of each process); ``lab down`` stops exactly those, by PID. The broker URL
(with its password) is written to ``broker.env`` (mode 0600), never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.errors import LabError
from agent.lab import procs

RECORD = "fleet.json"
BROKER_FILE = "broker.env"


@dataclass(frozen=True)
class Started:
    name: str
    pid: int
    start_time: int | None


def broker_file(lab_dir: Path) -> Path:
    return lab_dir / BROKER_FILE


def start(lab_dir: Path, workers: int, concurrency: int = 2) -> tuple[str, list[Started]]:
    """Start redis-server and ``workers`` workers; returns the broker URL and what started.

    Raises:
        LabError: redis-server is missing or does not answer; a worker exits at once.
    """
    server = shutil.which("redis-server")
    if server is None:
        raise LabError(
            "redis-server is not installed",
            where="lab --redis",
            hint="apt-get install redis-server",
        )
    fleet_dir = lab_dir / "fleet"
    fleet_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    password = secrets.token_hex(16)
    port = _free_port()
    conf = fleet_dir / "redis.conf"  # the password stays out of the process list
    conf.write_text(
        f'bind 127.0.0.1\nport {port}\nrequirepass {password}\nsave ""\nappendonly no\n'
        f"dir {fleet_dir}\nlogfile {fleet_dir / 'redis.log'}\n"
    )
    os.chmod(conf, 0o600)
    started = [_spawn("redis-server", [server, str(conf)], fleet_dir)]
    _record(lab_dir, started)
    procs.wait_port("127.0.0.1", port, 10.0, "redis-server")
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    env_file = broker_file(lab_dir)
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"ORIGIN_AGENT_BROKER={url}\n")
    for n in range(workers):
        argv = [sys.executable, "-m", "agent", "worker", "-c", str(concurrency)]
        argv += ["--state-dir", str(fleet_dir / f"worker{n}-state")]
        started.append(_spawn(f"worker{n}", argv, fleet_dir, {"ORIGIN_AGENT_BROKER": url}))
        _record(lab_dir, started)
    time.sleep(0.5)
    dead = [s.name for s in started if procs.start_time(s.pid) != s.start_time]
    if dead:
        raise LabError(f"{', '.join(dead)} exited at once (see {fleet_dir}/*.log)", where="lab")
    return url, started


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(name: str, argv: list[str], where: Path, env: dict[str, str] | None = None) -> Started:
    log = (where / f"{name}.log").open("ab")
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    log.close()
    return Started(name, proc.pid, procs.start_time(proc.pid))


def _record(lab_dir: Path, started: list[Started]) -> None:
    tmp = lab_dir / (RECORD + ".tmp")
    tmp.write_text(json.dumps([asdict(s) for s in started], indent=1))
    tmp.rename(lab_dir / RECORD)


def stop(lab_dir: Path) -> int:
    """Stop the recorded processes (workers first, then Redis) and their children, by PID,
    only where the PID still names the process that was started. Returns how many."""
    try:
        data = json.loads((lab_dir / RECORD).read_text())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as err:
        raise LabError(f"unreadable fleet record: {err}", where=str(lab_dir / RECORD)) from err
    started = [Started(**s) for s in data]
    live = [s for s in started if procs.start_time(s.pid) == s.start_time]
    workers = [s.pid for s in live if s.name != "redis-server"]
    pool = [c for pid in workers for c in _children(pid)]
    procs.terminate(workers, timeout=15.0)
    procs.terminate(pool, timeout=2.0)
    procs.terminate([s.pid for s in live if s.name == "redis-server"])
    (lab_dir / RECORD).unlink(missing_ok=True)
    return len(live) + len(pool)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
    return found
