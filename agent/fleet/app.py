"""The Celery application of a fleet run: Redis as broker and result backend, JSON only.

A task is acknowledged only once it has finished (``acks_late``), a task whose worker process
died is given back to the queue (``task_reject_on_worker_lost``), a worker takes one task at a
time (prefetch 1), and the broker redelivers a task nobody acknowledged after the visibility
timeout: the task timeout plus a margin (10 s or 10 %, whichever is more), so a slow task is
never handed to a second worker while the first still runs it.
"""

from __future__ import annotations

import os
import ssl
from typing import Any
from urllib.parse import urlsplit

from agent.errors import BrokerError

__all__ = ["BrokerError", "make_app"]

BROKER_ENV = "ORIGIN_AGENT_BROKER"
DEFAULT_TASK_TIMEOUT = 600.0
TASK_NAME = "origin_agent.run_slice"
UNSET = "origin-agent-unset://"
SCHEMES = ("redis", "rediss")


def visibility_timeout(task_timeout: float) -> float:
    """Seconds an unacknowledged task stays with its worker before redelivery."""
    return task_timeout + max(10.0, task_timeout * 0.1)


def safe_url(url: str) -> str:
    """``url`` with its password masked (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def check_url(url: str) -> str:
    """A usable broker URL (``redis://`` or ``rediss://``).

    Raises:
        BrokerError: another scheme, or no host (the password is never shown).
    """
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise BrokerError(
            f"broker {safe_url(url)!r} is not a redis:// or rediss:// URL",
            where="--broker",
            hint="e.g. redis://:PASSWORD@127.0.0.1:6379/0",
        )
    return url


def broker_from(given: str | None) -> str:
    """``--broker``, else ``$ORIGIN_AGENT_BROKER``.

    Raises:
        BrokerError: neither is set, or the URL is not Redis's.
    """
    url = given or os.environ.get(BROKER_ENV, "")
    if not url:
        raise BrokerError(
            "no broker given", where="--broker", hint=f"use --broker URL or set ${BROKER_ENV}"
        )
    return check_url(url)


def make_app(broker: str | None, task_timeout: float = DEFAULT_TASK_TIMEOUT) -> Any:
    """A Celery app on ``broker`` (None: one that fails clearly when first used), with the
    fleet task registered."""
    from celery import Celery

    _register_unset_transport()
    url = broker or UNSET
    app = Celery("origin_agent", broker=url, backend=None if broker is None else url)
    vt = int(visibility_timeout(task_timeout)) + 1
    # a dead worker's unacknowledged tasks are looked for every 5 s (kombu's default scans
    # every 100 s); they are redelivered once older than the visibility timeout
    transport: dict[str, Any] = {
        "visibility_timeout": vt,
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
    }
    if url.startswith("rediss://"):  # TLS: the server's certificate is checked (the system's
        # CAs, or ?ssl_ca_certs=PATH in the URL)
        tls = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
        app.conf.update(broker_use_ssl=tls, redis_backend_use_ssl=tls)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        result_extended=True,  # which worker finished a task (the arguments hold no secret)
        task_default_queue="origin-agent",
        task_time_limit=int(task_timeout),
        broker_transport_options=transport,
        result_backend_transport_options={"visibility_timeout": vt},
        result_expires=7 * 86400,  # a run can be resumed for a week
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
        task_send_sent_event=True,
    )
    from agent.fleet import work

    work.register(app)
    return app


def _register_unset_transport() -> None:
    from kombu.transport import TRANSPORT_ALIASES

    TRANSPORT_ALIASES.setdefault("origin-agent-unset", "agent.fleet.unset:Transport")
