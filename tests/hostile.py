"""Hostile and careless input: the CLI run in-process on an input, what came out of it, and the
session's tally (inputs tried, tracebacks seen, planted secrets found in what was printed or
written).

The tally is written to tests/hostile-last-run.txt at the end of a pytest session (see
tests/unit/conftest.py), so the README quotes figures from one run. A "traceback" is any
exception other than :class:`~agent.errors.AgentError` reaching the CLI's top level or a fuzz
property (the CLI turns it into "internal error"), or a traceback printed or logged.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Values planted where a careless user puts a secret (an environment variable the inventory
# names, a field that wants a name, a file): none may ever be printed or written.
PLANTED = (
    "Zq8sK2v-PlantedCloudflareToken-0123456789",
    "hunter2-Planted-Passw0rd",
    "deadbeefPLANTEDhmac0123456789abcdef",
    "$6$PLANTEDsalt$PLANTEDshadowhash",
)
# What escapes a terminal or a line when printed raw: ESC and the other C0 controls but TAB and
# LF, DEL, the C1 controls and the bidi overrides.
RAW_CONTROLS = frozenset(
    [chr(c) for c in range(32) if c not in (9, 10)]
    + [chr(0x7F)]
    + [chr(c) for c in range(0x80, 0xA0)]
    + list("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


@dataclass
class Tally:
    """What one pytest session tried and saw."""

    hypothesis_examples: int = 0
    fixed_cases: int = 0
    cli_runs: int = 0
    tracebacks: int = 0
    secrets_found: int = 0
    where: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> int:
        return self.hypothesis_examples + self.fixed_cases

    def traceback_seen(self, what: str) -> None:
        self.tracebacks += 1
        self.where.append(f"traceback: {what[:160]}")

    def secret_seen(self, what: str) -> None:
        self.secrets_found += 1
        self.where.append(f"secret: {what[:160]}")


TALLY = Tally()


def planted_in(text: str) -> bool:
    return any(secret in text for secret in PLANTED)


@dataclass(frozen=True)
class Outcome:
    """What one CLI run did: exit code, stdout, stderr (with what was logged), the commands it
    started and the files it opened for writing."""

    code: int
    out: str
    err: str
    spawned: list[str]
    written: list[str]

    @property
    def lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


class _Recorder:
    """An audit hook (added once) that records, while a CLI run is watched, every process
    started and every file opened for writing."""

    def __init__(self) -> None:
        self.on = False
        self.spawned: list[str] = []
        self.written: list[str] = []
        self.local = threading.local()

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.on or getattr(self.local, "busy", False):
            return
        self.local.busy = True
        try:
            self._record(event, args)
        finally:
            self.local.busy = False

    def _record(self, event: str, args: tuple[Any, ...]) -> None:
        if event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.spawn"):
            self.spawned.append(" ".join(os.fsdecode(a) for a in args[1])[:200])
        elif event == "os.system":
            self.spawned.append(os.fsdecode(args[0])[:200])
        elif event == "open" and isinstance(args[2], int) and args[2] & WRITE_FLAGS:
            path = args[0]
            if isinstance(path, (str, bytes)) and os.fsdecode(path) not in (os.devnull,):
                self.written.append(os.fsdecode(path))
        elif event in ("os.mkdir", "sqlite3.connect"):
            path = args[0]
            if isinstance(path, (str, bytes, os.PathLike)) and os.fspath(path) != ":memory:":
                self.written.append(os.fsdecode(os.fspath(path)))


_RECORDER = _Recorder()
sys.addaudithook(_RECORDER)


@contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _main(argv: list[str]) -> int:
    from agent.cli import main

    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


def run_cli(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Outcome:
    """Run ``origin-agent ARGV`` in this process and tally what came out."""
    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    root = logging.getLogger()
    root.addHandler(handler)
    _RECORDER.spawned, _RECORDER.written = [], []
    _RECORDER.on = True
    try:
        with _environ(env or {}), redirect_stdout(out), redirect_stderr(err):
            code = _main(list(argv))
    except Exception:  # noqa: BLE001 - that is what is being counted
        code = -1
        err.write(traceback.format_exc())
    finally:
        _RECORDER.on = False
        root.removeHandler(handler)
    outcome = Outcome(code, out.getvalue(), err.getvalue(), _RECORDER.spawned, _RECORDER.written)
    note(" ".join(argv), outcome)
    return outcome


def note(what: str, outcome: Outcome) -> None:
    """Tally one CLI run: a traceback or "internal error", a planted secret printed or written."""
    TALLY.cli_runs += 1
    text = outcome.out + outcome.err
    if code_is_internal(outcome.code) or "Traceback" in text or "internal error" in text:
        TALLY.traceback_seen(what)
    if planted_in(text) or any(planted_in(_read(path)) for path in set(outcome.written)):
        TALLY.secret_seen(what)


def code_is_internal(code: int) -> bool:
    return code == -1


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(1 << 20).decode("utf-8", "replace")
    except OSError:
        return ""


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> None:
    """Write ``files`` (relative path -> text or bytes) under ``root``."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def summary(command: str, date: str) -> str:
    """The tally as the text of tests/hostile-last-run.txt."""
    lines = [
        f"date: {date}",
        f"command: {command}",
        f"inputs tried: {TALLY.inputs}",
        f"  hypothesis examples: {TALLY.hypothesis_examples}",
        f"  fixed cases: {TALLY.fixed_cases}",
        f"  CLI runs (within both): {TALLY.cli_runs}",
        f"tracebacks: {TALLY.tracebacks}",
        f"planted secrets found in output: {TALLY.secrets_found}",
        *TALLY.where[:50],
    ]
    return "\n".join(lines) + "\n"
