"""What the runner tells a reporter, as plain frozen dataclasses.

Events carry text already made safe by the runner: change descriptions never include secret
data and diffs of secret files are redacted. Reporters still escape host-supplied text.
The field names are part of the JSON-lines output (``--json``), which users may rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Status = Literal["ok", "changed", "failed", "skipped", "unreachable"]


@dataclass(frozen=True)
class RunStarted:
    plan: str
    hosts: int
    forks: int
    check: bool = False
    diff: bool = False


@dataclass(frozen=True)
class PlayStarted:
    play: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class BatchStarted:
    play: str
    index: int  # 1-based
    count: int  # number of batches in the play
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class TaskDone:
    """One task (or one loop item, or a handler) finished on one host."""

    host: str
    play: str
    task: str
    module: str
    status: Status
    msg: str = ""
    handler: bool = False
    item: str | None = None
    ignored: bool = False  # failed, but the task has ignore_errors
    changes: tuple[str, ...] = ()  # one line per change (applied, or would be in check mode)
    diff: str = ""
    check: bool = False


@dataclass(frozen=True)
class HostUnreachable:
    host: str
    msg: str


@dataclass(frozen=True)
class BatchAborted:
    """The failed share of a batch passed the play's threshold: no further batch starts."""

    play: str
    failed: int
    total: int
    threshold: float
    hosts_not_run: tuple[str, ...]


@dataclass(frozen=True)
class HostResult:
    """The recap for one host."""

    host: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    ignored: int = 0
    unreachable: bool = False
    not_run: bool = False  # never started: a failure threshold stopped the run first
    error: str = ""  # first error line


@dataclass(frozen=True)
class RunFinished:
    hosts: tuple[HostResult, ...]
    exit_code: int
    elapsed: float
    aborted: bool = False


Event = (
    RunStarted
    | PlayStarted
    | BatchStarted
    | TaskDone
    | HostUnreachable
    | BatchAborted
    | RunFinished
)


class Reporter(Protocol):
    """Receives events; the runner calls it from one thread at a time."""

    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


class NullReporter:
    """Discards events."""

    def emit(self, event: Event) -> None:
        pass

    def close(self) -> None:
        pass


class ListReporter:
    """Keeps events in a list (tests, and the JSON record of a run)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNREACHABLE = 3


def exit_code_for(results: tuple[HostResult, ...] | list[HostResult], aborted: bool) -> int:
    """0 all ok; 1 a host failed (or the run was stopped for another reason); 3 some host was
    unreachable and none failed, also when the unreachable hosts stopped the run at a failure
    threshold (as the README and ``doc exit-codes`` say)."""
    if any(r.failed for r in results):
        return EXIT_FAILED
    if any(r.unreachable for r in results):
        return EXIT_UNREACHABLE
    return EXIT_FAILED if aborted else EXIT_OK
