"""Status rows as a terminal table, JSON, or a one-page HTML report with an expiry timeline."""

from __future__ import annotations

import html
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


_COLOURS = {
    "strict": "#2e7d32",
    "full_pinned": "#558b2f",
    "full": "#f9a825",
    "flexible": "#e65100",
    "off": "#b71c1c",
}


def _timeline(rows: Sequence[StatusRow], now: datetime) -> str:
    dated = [r for r in rows if r.days_left is not None]
    horizon = max([90] + [min(r.days_left or 0, 400) for r in dated]) + 10
    width, left, bar_h, gap = 760, 210, 16, 6
    height = 30 + (bar_h + gap) * max(1, len(dated))

    def x(days: float) -> float:
        return left + (width - left - 20) * max(0.0, min(days, horizon)) / horizon

    parts = [
        f'<svg class="timeline" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'role="img" aria-label="Expiry timeline">'
    ]
    for mark in (0, 30, 60, 90, 180, 365):
        if mark <= horizon:
            parts.append(
                f'<line x1="{x(mark):.1f}" y1="18" x2="{x(mark):.1f}" y2="{height}" stroke="#ccc"/>'
                f'<text x="{x(mark):.1f}" y="12" font-size="10" text-anchor="middle">'
                f"{'today' if mark == 0 else f'+{mark}d'}</text>"
            )
    parts.append(
        f'<rect x="{x(0):.1f}" y="18" width="{x(30) - x(0):.1f}" height="{height - 18}" fill="#ffebee" opacity="0.6"/>'
    )
    for i, row in enumerate(dated):
        y = 22 + i * (bar_h + gap)
        days = row.days_left or 0
        due = row.renew_at is not None and row.renew_at <= now  # the renewal policy's verdict
        colour = "#b71c1c" if due or days < 0 else _COLOURS.get(row.mode, "#666")
        label = html.escape(f"{row.host} {row.name}")[:40]
        parts.append(f'<text x="4" y="{y + 12}" font-size="11">{label}</text>')
        parts.append(
            f'<rect x="{x(0):.1f}" y="{y}" width="{max(2.0, x(days) - x(0)):.1f}" height="{bar_h}" '
            f'fill="{colour}"><title>{label}: {days} days left</title></rect>'
        )
        parts.append(f'<text x="{x(days) + 4:.1f}" y="{y + 12}" font-size="10">{days}d</text>')
    parts.append("</svg>")
    return "".join(parts)


def to_html(rows: Sequence[StatusRow], now: datetime, *, title: str = "origin-agent status") -> str:
    """One self-contained page: summary counts, the expiry timeline, and the table."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.mode_label] = counts.get(row.mode_label, 0) + 1
    summary = " · ".join(f"{html.escape(k)}: {v}" for k, v in sorted(counts.items()))
    body_rows = []
    for row in rows:
        cells = "".join(f"<td>{html.escape(c)}</td>" for c in _cells(row))
        body_rows.append(f'<tr class="mode-{html.escape(row.mode)}">{cells}</tr>')
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}"
        "th{background:#f5f5f5}"
        + "".join(
            f"tr.mode-{m} td:nth-child(4){{color:#fff;background:{c}}}" for m, c in _COLOURS.items()
        )
    )
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>Generated {now:%Y-%m-%d %H:%M} UTC · {len(rows)} certificates · {summary}</p>"
        f"<h2>Expiry timeline</h2>{_timeline(rows, now)}"
        f"<h2>Origins, most urgent first</h2><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body_rows)}</tbody></table></body></html>\n"
    )


def _vantage(row: StatusRow) -> str:
    """Where a strict row was seen from, when not from the controller."""
    return "seen from the origin over SSH" if row.vantage == "origin" else ""
