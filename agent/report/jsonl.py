"""JSON-lines output (``--json``): one object per event, flushed as it happens.

Each line is ``{"event": "<name>", ...fields}`` where the name is the event class in snake case
(``run_started``, ``play_started``, ``batch_started``, ``task_done``, ``host_unreachable``,
``batch_aborted``, ``run_finished``) and the fields are those of
:mod:`agent.report.events`. Events never carry secret data: change descriptions of secret
files show no content and their diffs are redacted by the modules.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from typing import IO, Any

from agent.report.events import Event


def event_name(event: Event) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()


def to_dict(event: Event) -> dict[str, Any]:
    """The JSON object of an event."""
    return {"event": event_name(event), **dataclasses.asdict(event)}


class JsonReporter:
    """Writes one JSON object per line to ``stream`` (stdout by default)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def emit(self, event: Event) -> None:
        self.stream.write(json.dumps(to_dict(event), sort_keys=True, ensure_ascii=True) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
