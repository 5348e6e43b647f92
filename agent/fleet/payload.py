"""What a fleet task carries, as plain JSON: a slice of a batch's hosts and the plan data the
worker needs to run them exactly as the controller would.

A task names files (the plan with its SHA-256, the inventory sources) instead of carrying them:
the workers have the same files at the same paths and refuse a mismatch (the plan's digest, a
digest of each host's variables). It never carries a secret: a value that is a
:class:`~agent.secret.Secret`, holds a private key, or sits under a name that says it is secret
is refused before anything is sent (issuer secrets stay named by env var or file, and are read
on the worker). Registered results travel with such values redacted.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import UsageError
from agent.secret import Secret

DEFAULT_QUEUE = "origin-agent"
DEFAULT_HOSTS_PER_TASK = 10
QUEUE_VAR = "worker_queue"
REDACTED = "<redacted>"
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_SECRET_NAME = re.compile(
    r"(passw|secret|token|private|api_?key|key_pem|credential|passphrase)", re.IGNORECASE
)
_KEY_MARK = "PRIVATE KEY"


class SecretInPayloadError(UsageError):
    """A value bound for the broker is (or looks) secret: it must stay on the machines."""


@dataclass(frozen=True)
class Slice:
    """Hosts of one batch that go to one task, on one queue."""

    queue: str
    hosts: tuple[str, ...]


def queue_of(host: str, host_vars: Mapping[str, Any]) -> str:
    """The queue a host's work goes to: its ``worker_queue`` var, else the default.

    Raises:
        UsageError: ``worker_queue`` is not a plain queue name (named, with the host).
    """
    value = host_vars.get(QUEUE_VAR, DEFAULT_QUEUE)
    if not isinstance(value, str) or not _QUEUE_NAME.match(value):
        raise UsageError(
            f"{QUEUE_VAR} must be a queue name (letters, digits, '_.:-'), got {value!r:.60}",
            where=host,
        )
    return value


def slices(hosts: Sequence[tuple[str, str]], per_task: int) -> list[Slice]:
    """Split a batch's ``(host, queue)`` pairs into tasks of at most ``per_task`` hosts of one
    queue, in the batch's order (queues in order of first appearance)."""
    if per_task < 1:
        raise UsageError("--hosts-per-task must be at least 1")
    by_queue: dict[str, list[str]] = {}
    for host, queue in hosts:
        by_queue.setdefault(queue, []).append(host)
    out: list[Slice] = []
    for queue, names in by_queue.items():
        for start in range(0, len(names), per_task):
            out.append(Slice(queue, tuple(names[start : start + per_task])))
    return out


def file_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def vars_digest(host_vars: Mapping[str, Any], groups: Iterable[str]) -> str:
    """A digest of a host's merged variables and groups: what the worker loaded must match."""
    text = json.dumps({"vars": host_vars, "groups": sorted(groups)}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def redact(value: Any) -> Any:
    """``value`` (a registered result) with secret-looking entries replaced by a marker."""
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, str):
        return REDACTED if _KEY_MARK in value else value
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if _SECRET_NAME.search(str(k)) else redact(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def refuse_secrets(value: Any, where: str = "task") -> None:
    """Raise if anything in ``value`` is secret or looks it.

    Raises:
        SecretInPayloadError: names the path of the value (never the value).
    """
    if isinstance(value, Secret):
        raise SecretInPayloadError(f"{where} is a secret", where="fleet task", hint=_HINT)
    if isinstance(value, str):
        if _KEY_MARK in value:
            raise SecretInPayloadError(
                f"{where} holds a private key", where="fleet task", hint=_HINT
            )
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if _SECRET_NAME.search(str(k)) and v not in (None, "", REDACTED):
                raise SecretInPayloadError(
                    f"{where}.{k} looks secret", where="fleet task", hint=_HINT
                )
            refuse_secrets(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            refuse_secrets(v, f"{where}[{i}]")


_HINT = (
    "a fleet task never carries secrets: put the value in a file or environment variable on "
    "the workers and name it (as issuers do)"
)


def encode(payload: Mapping[str, Any]) -> str:
    """The payload as JSON text, after :func:`refuse_secrets` (JSON only: a value JSON cannot
    carry is refused, never pickled).

    Raises:
        SecretInPayloadError: see :func:`refuse_secrets`; UsageError: not JSON-serialisable.
    """
    refuse_secrets(payload)
    try:
        return json.dumps(payload, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise UsageError(f"a fleet task must be plain JSON: {err}", where="fleet task") from err


def decode(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise UsageError("a fleet task must be a JSON object", where="fleet task")
    return data
