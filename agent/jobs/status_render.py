"""Status rows as a terminal table, JSON, or a one-page HTML report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from agent.jobs.status import StatusRow
from agent.validate import terminal_safe

COLUMNS = (
    "host",
    "server",
    "name",
    "mode",
    "days",
    "not_after",
    "renew",
    "issuer",
    "serial",
    "pin",
    "why not higher",
)


def _cells(row: StatusRow) -> list[str]:
    return [
        row.host,
        row.server or "-",
        row.name,
        row.mode_label,
        "-" if row.days_left is None else str(row.days_left),
        row.not_after.strftime("%Y-%m-%d") if row.not_after else "-",
        _renew_cell(row),
        _short_issuer(row.issuer) or "-",
        (row.serial[:16] + "...") if len(row.serial) > 16 else (row.serial or "-"),
        (row.pin[:12] + "...") if row.pin else "-",
        "; ".join(row.reasons) if row.mode != "strict" else _vantage(row),
    ]


RULE_LABELS = {"lifetime": "2/3 of lifetime", "renew_before": "renew_before", "ari": "CA window"}


def _renew_cell(row: StatusRow) -> str:
    """When the certificate is renewed and by which rule (the full reason is in the JSON)."""
    if row.renew_at is None:
        return row.renew_why or "-"
    return f"{row.renew_at:%Y-%m-%d} ({RULE_LABELS.get(row.renew_rule, row.renew_rule)})"


def _short_issuer(issuer: str) -> str:
    for part in issuer.split(","):
        if part.strip().upper().startswith("CN="):
            return part.strip()[3:]
    return issuer


def table(rows: Sequence[StatusRow]) -> str:
    """A plain text table (the terminal output), widest first column sized to fit."""
    data = [list(COLUMNS)] + [[terminal_safe(c) for c in _cells(r)] for r in rows]
    widths = [max(len(line[i]) for line in data) for i in range(len(COLUMNS) - 1)]
    out = []
    for line in data:
        head = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line[:-1]))
        out.append((head + "  " + line[-1]).rstrip())
    return "\n".join(out) + "\n"


def to_json(rows: Sequence[StatusRow], now: datetime) -> str:
    return (
        json.dumps({"generated_at": now.isoformat(), "rows": [r.to_json() for r in rows]}, indent=1)
        + "\n"
    )


def to_html(rows: Sequence[StatusRow], now: datetime, *, require_mode: str = "strict") -> str:
    """The one-page HTML report (see :mod:`agent.jobs.report_html`)."""
    from agent.jobs import report_html

    return report_html.to_html(rows, now, require_mode=require_mode)


def _vantage(row: StatusRow) -> str:
    """Where a strict row was seen from, when not from the controller."""
    return "seen from the origin over SSH" if row.vantage == "origin" else ""
