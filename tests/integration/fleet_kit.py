"""Real components of a fleet run for the integration tests: a redis-server on a loopback port
(with a password) and real ``origin-agent worker`` processes, each stopped by the PIDs that were
started (and their pool processes), even when a test fails; plus a dump of everything Redis
holds, for the secret scan."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.integration.reliability.fleet import cli_argv, cli_env

REDIS_PASSWORD = "planted-redis-password-5b1c"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    port: int
    pid: int
    proc: subprocess.Popen[bytes]
    ca: str | None = None  # TLS (rediss://): the CA of the server's certificate

    @property
    def url(self) -> str:
        if self.ca is None:
            return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{self.port}/0"
        return f"rediss://:{REDIS_PASSWORD}@127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca}"

    def client(self) -> redis.Redis:
        if self.ca is None:
            return redis.Redis(host="127.0.0.1", port=self.port, password=REDIS_PASSWORD)
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=REDIS_PASSWORD,
            ssl=True,
            ssl_ca_certs=self.ca,
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def _tls_files(directory: Path) -> tuple[list[str], str]:
    """A CA and a server certificate for 127.0.0.1; redis-server's TLS arguments and the CA."""
    from tests.tlscerts import fresh, make_ca, make_leaf

    ca = make_ca("fleet test CA", start=fresh())
    leaf = make_leaf(["localhost"], issuer=ca, ips=["127.0.0.1"], start=fresh())
    (directory / "ca.pem").write_text(ca.cert_pem)
    (directory / "server.pem").write_text(leaf.cert_pem)
    (directory / "server.key").write_text(leaf.key_pem)
    os.chmod(directory / "server.key", 0o600)
    files = ["--tls-cert-file", str(directory / "server.pem")]
    files += ["--tls-key-file", str(directory / "server.key")]
    files += ["--tls-ca-cert-file", str(directory / "ca.pem"), "--tls-auth-clients", "no"]
    return files, str(directory / "ca.pem")


@contextmanager
def redis_server(directory: Path, *, tls: bool = False) -> Iterator[RedisServer]:
    """A private redis-server on 127.0.0.1 (password, no persistence; TLS only when ``tls``),
    stopped by its PID."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    ports = ["--port", str(port)]
    ca = None
    if tls:
        files, ca = _tls_files(directory)
        ports = ["--port", "0", "--tls-port", str(port), *files]
    log = (directory / "redis.log").open("wb")
    proc = subprocess.Popen(
        [
            "redis-server",
            *ports,
            "--bind",
            "127.0.0.1",
            "--requirepass",
            REDIS_PASSWORD,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = RedisServer(port, proc.pid, proc, ca)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                server.client().ping()
                break
            except redis.exceptions.ConnectionError:
                assert proc.poll() is None, (directory / "redis.log").read_text()
                assert time.monotonic() < deadline, "redis-server did not answer in 10 s"
                time.sleep(0.05)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (Celery's pool processes)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


@dataclass
class Workers:
    broker: str
    directory: Path
    task_timeout: float
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pool_pids: set[int] = field(default_factory=set)

    def start(self, count: int, concurrency: int = 2) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            n = len(self.procs)
            state = self.directory / f"worker{n}-state"
            log = (self.directory / f"worker{n}.log").open("wb")
            argv = cli_argv(
                "worker",
                "--broker",
                self.broker,
                "-c",
                str(concurrency),
                "--task-timeout",
                f"{self.task_timeout:g}",
                "--state-dir",
                str(state),
            )
            env = cli_env(str(state))
            env.pop("ORIGIN_AGENT_BROKER", None)
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            self.procs.append(proc)
        self.wait_ready(count)

    def wait_ready(self, count: int, timeout: float = 60.0) -> None:
        from agent.fleet.app import make_app

        app = make_app(self.broker)
        deadline = time.monotonic() + timeout
        while len(app.control.ping(timeout=0.5)) < count:
            dead = [p.pid for p in self.procs if p.poll() is not None]
            assert not dead, f"worker {dead} exited: {self.logs()[-2000:]}"
            assert time.monotonic() < deadline, "workers did not answer a ping"
        for proc in self.procs:
            self.pool_pids.update(children(proc.pid))

    def owner_of(self, pid: int) -> subprocess.Popen[bytes] | None:
        return next((p for p in self.procs if pid == p.pid or pid in children(p.pid)), None)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a worker and its pool processes (a machine that died)."""
        pids = [proc.pid, *children(proc.pid)]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=10)

    def logs(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in sorted(self.directory.glob("worker*.log"))
        )

    def stop(self) -> None:
        for proc in self.procs:
            self.pool_pids.update(children(proc.pid))
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill(proc)
        for pid in self.pool_pids:  # pool processes the workers started, if any outlived them
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@contextmanager
def workers(broker: str, directory: Path, count: int, task_timeout: float) -> Iterator[Workers]:
    group = Workers(broker, directory, task_timeout)
    try:
        group.start(count)
        yield group
    finally:
        group.stop()


def dump(client: redis.Redis) -> tuple[int, bytes]:
    """How many keys Redis holds and every value of every key (SCAN, TYPE, then each type's
    read), concatenated."""
    out: list[bytes] = []
    keys = 0
    for key in client.scan_iter(count=500):
        keys += 1
        out.append(key)
        kind = client.type(key).decode()
        if kind == "string":
            out.append(client.get(key) or b"")
        elif kind == "hash":
            for k, v in client.hgetall(key).items():
                out += [k, v]
        elif kind == "list":
            out += client.lrange(key, 0, -1)
        elif kind == "set":
            out += list(client.smembers(key))
        elif kind == "zset":
            out += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            for _, fields in client.xrange(key):
                for k, v in fields.items():
                    out += [k, v]
        else:
            raise AssertionError(f"unexpected Redis type {kind} for {key!r}")
    return keys, b"\n".join(out)


def started_task(server: RedisServer, part: str, timeout: float = 60.0) -> dict[str, Any]:
    """The result meta (with the worker's pid and hostname) of the first fleet task whose id
    holds ``part`` (e.g. ``-b2-``: the second batch) once a worker has STARTED it."""
    client = server.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key in client.scan_iter(match="celery-task-meta-*"):
            meta = json.loads(client.get(key) or b"{}")
            if meta.get("status") == "STARTED" and part in meta.get("task_id", ""):
                return dict(meta)
        time.sleep(0.05)
    raise AssertionError(f"no task {part} was STARTED in {timeout:g} s")
