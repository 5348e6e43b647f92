"""The transport of a fleet app made without a broker (``celery -A agent.fleet.celery_app``
with no ``$ORIGIN_AGENT_BROKER``): importing works, using it fails with a clear error."""

from __future__ import annotations

from typing import Any

from kombu.transport import virtual

from agent.fleet.app import BROKER_ENV, BrokerError


class Transport(virtual.Transport):
    def establish_connection(self) -> Any:
        raise BrokerError(
            "no broker configured",
            where="origin-agent fleet",
            hint=f"set ${BROKER_ENV}=redis://HOST:PORT/DB (or rediss:// for TLS)",
        )
