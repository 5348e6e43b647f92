"""``celery -A agent.fleet.celery_app inspect ...``: the fleet's app for Celery's own tooling,
on ``$ORIGIN_AGENT_BROKER`` (importable without it; using it then fails with a clear error)."""

from __future__ import annotations

import os

from agent.fleet.app import BROKER_ENV, make_app

app = make_app(os.environ.get(BROKER_ENV) or None)
