"""Human output: a line per task and host, diffs on request, a recap per host.

Colour only when the output is a terminal (rich decides from the stream). Host-supplied text
(messages, command output, diffs) is shown as plain text, never parsed as markup, with control
characters replaced so a host cannot move the cursor or recolour the terminal. On a terminal
with many hosts (``big_fleet``), ok and skipped lines are left out and a live progress line
counts them instead.
"""

from __future__ import annotations

import sys
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from agent.report.events import (
    BatchAborted,
    BatchStarted,
    Event,
    HostUnreachable,
    PlayStarted,
    RunFinished,
    RunStarted,
    TaskDone,
)
from agent.validate import terminal_safe

STYLES = {
    "ok": "green",
    "changed": "yellow",
    "failed": "red",
    "skipped": "cyan",
    "unreachable": "bold red",
    "ignored": "magenta",
}
BIG_FLEET = 20


def clean(text: str) -> str:
    """``text`` safe for one terminal line: every control character (ANSI escapes, CR and LF
    included: a value holding them would forge lines), C1 control and bidi override escaped.
    Multi-line output (diffs) is printed a line at a time."""
    return terminal_safe(text.expandtabs(4))


class HumanReporter:
    """Writes to ``console`` (injected in tests), or stdout."""

    def __init__(
        self, console: Console | None = None, *, stream: IO[str] | None = None, verbose: int = 0
    ) -> None:
        self.console = console or Console(
            file=stream or sys.stdout, highlight=False, soft_wrap=True
        )
        self.verbose = verbose
        self.check = False
        self.big = False
        self.counts = {k: 0 for k in STYLES}
        self.live: Live | None = None

    # -- helpers -------------------------------------------------------------------------------

    def _print(self, *parts: tuple[str, str] | str) -> None:
        self.console.print(
            Text.assemble(
                *[(clean(p), "") if isinstance(p, str) else (clean(p[0]), p[1]) for p in parts]
            )
        )

    def _progress(self) -> Text:
        c = self.counts
        return Text.assemble(
            ("progress ", "bold"),
            (f"ok={c['ok']} ", STYLES["ok"]),
            (f"changed={c['changed']} ", STYLES["changed"]),
            (f"failed={c['failed']} ", STYLES["failed"]),
            (f"skipped={c['skipped']} ", STYLES["skipped"]),
            (f"unreachable={c['unreachable']}", STYLES["unreachable"]),
        )

    # -- events --------------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.check = event.check
            self.big = self.console.is_terminal and event.hosts > BIG_FLEET
            mode = " (check mode: nothing will change)" if event.check else ""
            self._print((f"RUN {event.plan}", "bold"), f" on {event.hosts} hosts{mode}")
            if self.big:
                self.live = Live(
                    self._progress(), console=self.console, transient=True, auto_refresh=False
                )
                self.live.start()
        elif isinstance(event, PlayStarted):
            self._print(
                ("PLAY ", "bold"), (f"[{event.play}]", "bold"), f" {len(event.hosts)} hosts"
            )
        elif isinstance(event, BatchStarted):
            if event.count > 1:
                self._print(f"batch {event.index}/{event.count}: {', '.join(event.hosts)}")
        elif isinstance(event, TaskDone):
            self._task(event)
        elif isinstance(event, HostUnreachable):
            self.counts["unreachable"] += 1
            self._print(("unreachable", STYLES["unreachable"]), f": {event.host}: {event.msg}")
        elif isinstance(event, BatchAborted):
            self._print(
                (
                    f"STOPPED: {event.failed} of {event.total} hosts failed or were unreachable in a batch of "
                    f"play [{event.play}] (allowed: {event.threshold:g}%); "
                    f"{len(event.hosts_not_run)} hosts not run",
                    STYLES["failed"],
                )
            )
        elif isinstance(event, RunFinished):
            self._recap(event)
        if self.live is not None:
            self.live.update(self._progress(), refresh=True)

    def _task(self, event: TaskDone) -> None:
        status = "ignored" if event.ignored else event.status
        self.counts[status] += 1
        if self.big and status in ("ok", "skipped") and not self.verbose:
            return
        label = "would change" if status == "changed" and event.check else status
        item = f" ({event.item})" if event.item is not None else ""
        handler = "handler " if event.handler else ""
        msg = f": {event.msg}" if event.msg and status in ("failed", "ignored", "skipped") else ""
        self._print(
            (f"{label}", STYLES[status]), f": {event.host} | {handler}{event.task}{item}{msg}"
        )
        if status == "changed" and (event.check or self.verbose):
            for line in event.changes:
                self._print(f"    - {line}")
        if event.diff:
            for line in event.diff.splitlines():
                style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
                self._print(("    " + line, style))

    def _recap(self, event: RunFinished) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        self._print(("RECAP", "bold"))
        width = max((len(h.host) for h in event.hosts), default=4)
        for h in event.hosts:
            bad = (
                "failed"
                if h.failed
                else "unreachable"
                if h.unreachable
                else "skipped"
                if h.not_run
                else "ok"
            )
            self._print(
                (f"{h.host:<{width}}", STYLES[bad]),
                f"  ok={h.ok} ",
                (f"changed={h.changed}", STYLES["changed"] if h.changed else ""),
                f" failed={h.failed} skipped={h.skipped} ignored={h.ignored} "
                f"unreachable={int(h.unreachable)}",
                (" not run" if h.not_run else "", STYLES["skipped"]),
                (f"  {h.error}" if h.error else "", STYLES["failed"]),
            )
        self._print(f"exit {event.exit_code} after {event.elapsed:.1f}s")

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
