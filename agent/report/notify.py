"""Alerts: one JSON message per run that needs a human, posted to webhooks.

The body has a Slack/Mattermost-compatible ``text`` (a summary line and one line per problem)
and the same facts structured under ``origin_agent``. Posting retries connection errors,
timeouts, 429 and 5xx answers a bounded number of times with a per-attempt timeout, and never
raises: a dead receiver costs at most ``attempts * (timeout + backoff)`` seconds and one warning
line, never the run's exit code. Webhook URLs carry tokens, so only scheme and host are shown.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import requests

log = logging.getLogger(__name__)

Kind = Literal["failed", "unreachable", "expiring", "mode"]
TEXT_LINES = 20


@dataclass(frozen=True)
class Problem:
    """One thing a human should look at: a host that failed or was unreachable, or a
    certificate below the expiry threshold (or an origin below the required mode)."""

    host: str
    kind: Kind
    detail: str
    name: str = ""


def _escape(text: str) -> str:
    """Slack/Mattermost markup: &, < and > are control characters; one line only."""
    flat = " ".join(text.split())
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(
    problems: Sequence[Problem],
    *,
    command: str,
    inventory: str,
    counts: Mapping[str, int],
    exit_code: int,
    generated_at: str,
) -> dict[str, Any]:
    """The webhook body (pure)."""
    per_kind: dict[str, int] = {}
    for problem in problems:
        per_kind[problem.kind] = per_kind.get(problem.kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(per_kind.items())) or "no problems"
    lines = [f"origin-agent {_escape(command)} on {_escape(inventory)}: {summary}"]
    for problem in problems[:TEXT_LINES]:
        name = f" {_escape(problem.name)}" if problem.name else ""
        lines.append(
            f"- {_escape(problem.host)}{name}: {problem.kind}: {_escape(problem.detail)[:300]}"
        )
    if len(problems) > TEXT_LINES:
        lines.append(f"... and {len(problems) - TEXT_LINES} more")
    return {
        "text": "\n".join(lines),
        "origin_agent": {
            "command": command,
            "inventory": inventory,
            "generated_at": generated_at,
            "exit_code": exit_code,
            "counts": dict(counts),
            "problems": [asdict(p) for p in problems],
        },
    }


def shown(url: str) -> str:
    """A webhook URL without its path and query (they often hold the token)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/..."


def check_url(url: str) -> str | None:
    """Why ``url`` cannot be a webhook, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "a webhook URL must be http:// or https:// with a host"
    return None


def post(
    url: str,
    body: Mapping[str, Any],
    *,
    attempts: int = 3,
    timeout: float = 5.0,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """POST ``body`` as JSON; retry what may pass on a second try. Never raises.

    Returns:
        None when the receiver accepted it (2xx), else one line saying why not.
    """
    why = "not attempted"
    for attempt in range(1, max(1, attempts) + 1):
        try:
            answer = requests.post(url, json=dict(body), timeout=timeout, allow_redirects=False)
        except requests.RequestException as err:
            why = type(err).__name__
        else:
            if 200 <= answer.status_code < 300:
                return None
            why = f"HTTP {answer.status_code}"
            if answer.status_code != 429 and answer.status_code < 500:
                break  # the receiver refuses this message; asking again will not help
        log.info("webhook %s attempt %d: %s", shown(url), attempt, why)
        if attempt < attempts:
            sleep(backoff * attempt)
    return f"{shown(url)}: notification not delivered ({why})"
