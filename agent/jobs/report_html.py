"""The HTML report people read: problems first, then every origin in natural host order.

A problem is, most serious first: no TLS answer (or no certificate), an origin below the SSL
mode required (Flexible or Full where Full (strict) is asked for), a certificate expired or
that the renewal policy has due (soonest expiry first: the policy's ``renew_at``, not a fixed
number of days). Rows are coloured by SSL mode; columns include the issuer and the renewal
date with its rule. Counts per mode and per issuer head the page, a histogram of renewals due
per week replaces one bar per host, and a filter box hides the rows that do not match. One self-contained file: inline CSS and script, nothing
fetched. Every value from an origin or inventory is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from agent.jobs.order import natural_key
from agent.jobs.status import MODE_LABELS, StatusRow
from agent.pki.modes import MODES
from agent.validate import terminal_safe

COLOURS = {
    "strict": ("#e8f5e9", "#2e7d32"),
    "full_pinned": ("#f1f8e9", "#558b2f"),
    "full": ("#fff8e1", "#b26a00"),
    "flexible": ("#fff3e0", "#e65100"),
    "off": ("#ffebee", "#b71c1c"),
}
RULE_LABELS = {"lifetime": "2/3 of lifetime", "renew_before": "renew_before", "ari": "CA window"}


@dataclass(frozen=True)
class Verdict:
    """Where a row goes: ``rank`` 0-2 is a problem (most serious first), 3 is fine."""

    rank: int
    problem: str


def judge(row: StatusRow, *, now: datetime, require_mode: str) -> Verdict:
    """Whether ``row`` is a problem and which; renewal is due when the renewal policy says."""
    if row.mode == "off" or row.days_left is None:
        return Verdict(0, "; ".join(row.reasons) or "no certificate served")
    if row.mode in MODES and MODES.index(row.mode) < MODES.index(require_mode):
        return Verdict(1, f"{row.mode_label} where {MODE_LABELS[require_mode]} is required")
    if row.days_left < 0:
        return Verdict(2, f"expired {-row.days_left} days ago")
    if row.renew_at is not None and row.renew_at <= now:
        return Verdict(2, f"expires in {row.days_left} days (renewal due)")
    return Verdict(3, "")


def ordered(
    rows: Sequence[StatusRow], *, now: datetime, require_mode: str
) -> list[tuple[StatusRow, Verdict]]:
    """Problems first (by rank; expiring ones soonest first), then natural host order."""
    judged = [(r, judge(r, now=now, require_mode=require_mode)) for r in rows]

    def key(item: tuple[StatusRow, Verdict]) -> tuple[object, ...]:
        row, verdict = item
        soon = row.days_left if verdict.rank == 2 and row.days_left is not None else 0
        return (verdict.rank, soon, natural_key(row.host), natural_key(row.name))

    return sorted(judged, key=key)


def _short_issuer(issuer: str) -> str:
    for part in issuer.split(","):
        if part.strip().upper().startswith("CN="):
            return part.strip()[3:]
    return issuer or "-"


def _counts(items: Sequence[tuple[StatusRow, Verdict]]) -> str:
    modes: dict[str, int] = {}
    issuers: dict[str, int] = {}
    for row, _ in items:
        modes[row.mode] = modes.get(row.mode, 0) + 1
        issuers[_short_issuer(row.issuer)] = issuers.get(_short_issuer(row.issuer), 0) + 1
    chips = "".join(
        f'<span class="chip m-{m}">{html.escape(MODE_LABELS[m])}: {modes[m]}</span>'
        for m in reversed(MODES)
        if m in modes
    )
    issuer_rows = "".join(
        f"<tr><td>{html.escape(terminal_safe(name))}</td><td>{n}</td></tr>"
        for name, n in sorted(issuers.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return (
        f'<div class="counts"><div>{chips}</div><table class="issuers"><thead><tr><th>issuer</th>'
        f"<th>certificates</th></tr></thead><tbody>{issuer_rows}</tbody></table></div>"
    )


def _histogram(rows: Sequence[StatusRow], now: datetime) -> str:
    """Renewals due per week over 13 weeks (then "later"); the first bar, due now, in red."""
    buckets = [0] * 14
    for row in rows:
        if row.renew_at is not None:
            days = int((row.renew_at - now).total_seconds() // 86400)
            buckets[min(13, max(0, days // 7))] += 1
    top = max(buckets) or 1
    bar, gap, height = 36, 8, 90
    parts = [
        f'<svg class="hist" viewBox="0 0 {14 * (bar + gap)} {height + 30}" '
        f'width="{14 * (bar + gap)}" height="{height + 30}" role="img" '
        'aria-label="Certificates expiring per week">'
    ]
    for i, n in enumerate(buckets):
        h = round(height * n / top)
        x = i * (bar + gap)
        colour = "#c62828" if i == 0 else "#78909c"
        label = "later" if i == 13 else f"w{i + 1}"
        parts.append(
            f'<rect x="{x}" y="{height - h}" width="{bar}" height="{h}" fill="{colour}">'
            f"<title>{label}: {n}</title></rect>"
            f'<text x="{x + bar / 2}" y="{height + 12}" font-size="10" text-anchor="middle">{label}</text>'
            f'<text x="{x + bar / 2}" y="{max(10, height - h - 3)}" font-size="10" '
            f'text-anchor="middle">{n or ""}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


COLUMNS = (
    *("host", "name", "SSL mode", "problem", "expires", "days", "renewal due", "issuer"),
    *("server", "serial", "why not higher"),
)


def _row(row: StatusRow, verdict: Verdict) -> str:
    cells = [
        row.host,
        row.name,
        row.mode_label,
        verdict.problem,
        row.not_after.strftime("%Y-%m-%d") if row.not_after else "-",
        "-" if row.days_left is None else str(row.days_left),
        _renewal(row),
        _short_issuer(row.issuer),
        row.server or "-",
        (row.serial[:16] + "...") if len(row.serial) > 16 else (row.serial or "-"),
        "; ".join(row.reasons) if row.mode != "strict" else "",
    ]
    kind = "problem" if verdict.rank < 3 else "fine"
    # escaped for HTML, and controls and bidi overrides shown as \xNN (copied text stays inert)
    tds = "".join(f"<td>{html.escape(terminal_safe(c))}</td>" for c in cells)
    return f'<tr class="m-{html.escape(row.mode)} {kind}">{tds}</tr>'


_SCRIPT = """
const box = document.getElementById('filter'), rows = document.querySelectorAll('#origins tbody tr');
const shown = document.getElementById('shown');
box.addEventListener('input', () => {
  const q = box.value.trim().toLowerCase(); let n = 0;
  rows.forEach(r => { const hit = !q || r.textContent.toLowerCase().includes(q);
    r.style.display = hit ? '' : 'none'; n += hit; });
  shown.textContent = n + ' of ' + rows.length + ' shown';
});
"""


def _style() -> str:
    base = (
        "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 7px;"
        "text-align:left;white-space:nowrap}th{background:#f5f5f5;position:sticky;top:0}"
        "tr.problem td:first-child{border-left:4px solid #c62828;font-weight:600}"
        ".chip{display:inline-block;padding:3px 9px;margin:0 6px 6px 0;border-radius:10px;font-size:13px}"
        ".counts{display:flex;gap:2em;align-items:flex-start}#filter{font-size:14px;padding:4px 8px;"
        "width:28em;margin:8px 0}.summary{font-size:15px}.bad{color:#c62828;font-weight:600}"
    )
    return base + "".join(
        f"tr.m-{m} td{{background:{bg}}}tr.m-{m} td:nth-child(3),.chip.m-{m}"
        f"{{background:{fg};color:#fff}}"
        for m, (bg, fg) in COLOURS.items()
    )


def _renewal(row: StatusRow) -> str:
    if row.renew_at is None:
        return "-"
    return f"{row.renew_at:%Y-%m-%d} ({RULE_LABELS.get(row.renew_rule, row.renew_rule)})"


def to_html(
    rows: Sequence[StatusRow],
    now: datetime,
    *,
    require_mode: str = "strict",
    title: str = "origin-agent status",
) -> str:
    """The whole page (pure: rows and ``now`` in, text out)."""
    items = ordered(rows, now=now, require_mode=require_mode)
    problems = sum(1 for _, v in items if v.rank < 3)
    said = (
        f'<span class="bad">{problems} need attention</span>'
        if problems
        else "nothing needs attention"
    )
    hosts = len({r.host for r in rows})
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join(_row(r, v) for r, v in items)
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{_style()}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p class="summary">Generated {now:%Y-%m-%d %H:%M} UTC · {hosts} hosts · {len(rows)} '
        f"certificates · {said} (required: {html.escape(MODE_LABELS[require_mode])})</p>"
        f"{_counts(items)}<h2>Renewals due per week</h2>{_histogram(rows, now)}"
        f"<h2>Origins: problems first, then by host</h2>"
        f'<input id="filter" type="search" placeholder="filter: host, name, mode, issuer, problem" '
        f'aria-label="filter rows"> <span id="shown">{len(rows)} of {len(rows)} shown</span>'
        f'<table id="origins"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
