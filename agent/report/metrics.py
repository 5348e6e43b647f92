"""Metrics in the Prometheus text format, for node_exporter's textfile collector.

Per host and certificate name: expiry, renewal-due and last-rotation timestamps and the SSL mode
as a labelled gauge (1 for the mode the origin is ready for, 0 for the others). Per run of
``rotate``: hosts per result, duration, when it ended and its exit code. The file is written to
a temporary name beside it and renamed over it, so a scrape never reads half a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from agent.errors import AgentError

PREFIX = "origin_agent"
MODES = ("off", "flexible", "full", "full_pinned", "strict")
RESULTS = ("rotated", "unchanged", "failed", "unreachable", "not run")


class MetricsError(AgentError, OSError):
    """The metrics file could not be written."""


@dataclass(frozen=True)
class CertSample:
    """What ``status`` found for one host and name (times aware UTC; None when unknown)."""

    host: str
    name: str
    mode: str
    not_after: datetime | None = None
    renewal_due: datetime | None = None
    last_rotation: datetime | None = None


@dataclass(frozen=True)
class RunSample:
    """One ``rotate`` run: hosts per result, how long it took, when it ended, its exit code."""

    results: Mapping[str, int]
    duration: float
    ended_at: datetime
    exit_code: int
    labels: Mapping[str, str] = field(default_factory=dict)


def registry_for(
    certs: Sequence[CertSample], run: RunSample | None, *, probed_at: datetime | None = None
) -> CollectorRegistry:
    """A registry holding the gauges for ``certs`` and ``run`` (pure: no I/O)."""
    reg = CollectorRegistry()
    hn = ["host", "name"]
    expiry = Gauge(
        f"{PREFIX}_certificate_expiry_timestamp_seconds",
        "When the served certificate expires (Unix time).",
        hn,
        registry=reg,
    )
    due = Gauge(
        f"{PREFIX}_certificate_renewal_due_timestamp_seconds",
        "When rotate will renew the certificate: expiry minus renew_before_days (Unix time).",
        hn,
        registry=reg,
    )
    rotated = Gauge(
        f"{PREFIX}_certificate_last_rotation_timestamp_seconds",
        "When origin-agent last issued and deployed a certificate for this name (Unix time).",
        hn,
        registry=reg,
    )
    mode = Gauge(
        f"{PREFIX}_ssl_mode",
        "1 for the highest CDN SSL mode the origin is ready for, 0 for the other modes.",
        [*hn, "mode"],
        registry=reg,
    )
    for cert in certs:
        key = (cert.host, cert.name)
        for candidate in MODES:
            mode.labels(*key, candidate).set(1 if candidate == cert.mode else 0)
        if cert.not_after is not None:
            expiry.labels(*key).set(cert.not_after.timestamp())
        if cert.renewal_due is not None:
            due.labels(*key).set(cert.renewal_due.timestamp())
        if cert.last_rotation is not None:
            rotated.labels(*key).set(cert.last_rotation.timestamp())
    if probed_at is not None:
        Gauge(
            f"{PREFIX}_status_timestamp_seconds",
            "When the origins were last probed (Unix time).",
            registry=reg,
        ).set(probed_at.timestamp())
    if run is not None:
        _run_gauges(reg, run)
    return reg


def _run_gauges(reg: CollectorRegistry, run: RunSample) -> None:
    hosts = Gauge(
        f"{PREFIX}_rotate_hosts",
        "Hosts of the last rotate run, by result.",
        ["result"],
        registry=reg,
    )
    for result in RESULTS:
        hosts.labels(result.replace(" ", "_")).set(run.results.get(result, 0))
    Gauge(
        f"{PREFIX}_rotate_duration_seconds",
        "Wall time of the last rotate run.",
        registry=reg,
    ).set(run.duration)
    Gauge(
        f"{PREFIX}_rotate_last_run_timestamp_seconds",
        "When the last rotate run ended (Unix time).",
        registry=reg,
    ).set(run.ended_at.timestamp())
    Gauge(
        f"{PREFIX}_rotate_exit_code",
        "Exit code of the last rotate run (0 ok, 1 a host failed, 3 unreachable hosts).",
        registry=reg,
    ).set(run.exit_code)


def write(
    path: Path,
    certs: Sequence[CertSample],
    run: RunSample | None,
    *,
    probed_at: datetime | None = None,
) -> None:
    """Write the textfile atomically (a temporary file beside ``path``, then rename).

    Raises:
        MetricsError: the directory is missing or not writable.
    """
    reg = registry_for(certs, run, probed_at=probed_at)
    if not path.name.endswith(".prom"):
        raise MetricsError(
            "metrics file name must end in .prom",
            where=str(path),
            hint="node_exporter reads *.prom",
        )
    try:
        write_to_textfile(os.fspath(path), reg)
    except OSError as err:
        raise MetricsError(f"cannot write metrics: {err.strerror}", where=str(path)) from err
