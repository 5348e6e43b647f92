"""Natural order for host and certificate names: ``h2`` before ``h10``, as people number them."""

from __future__ import annotations

import re

_RUNS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[tuple[int, int, str], ...], str]:
    """A sort key comparing digit runs as numbers and the rest case-insensitively; the text
    itself breaks ties (``h02`` and ``h2``), so the order is total and stable."""
    parts = tuple(
        (0, int(run), "") if run.isdigit() else (1, 0, run.lower())
        for run in _RUNS.split(text)
        if run
    )
    return parts, text
