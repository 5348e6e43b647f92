"""Kept for imports of ``agent.pki.secret``: the type lives in :mod:`agent.secret`."""

from agent.secret import Secret

__all__ = ["Secret"]
