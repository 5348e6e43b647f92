"""Where the state lives: ``$ORIGIN_AGENT_STATE_DIR``, else ``~/.local/state/origin-agent``.

The directory is created 0700 and refused if others can reach into it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from agent.errors import StateError

ENV_VAR = "ORIGIN_AGENT_STATE_DIR"
DB_NAME = "state.sqlite3"


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$ORIGIN_AGENT_STATE_DIR`` if set and not empty, else ``~/.local/state/origin-agent``
    (``$XDG_STATE_HOME/origin-agent`` when that is set)."""
    env = os.environ if environ is None else environ
    explicit = env.get(ENV_VAR, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = env.get("XDG_STATE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "origin-agent"


def ensure_state_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` with mode 0700 if missing (parents get the default mode) and check it.

    Raises:
        StateError: it cannot be created, is not a directory, or is open to group/others.
    """
    directory = Path(path)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir(mode=0o700, exist_ok=True)
        st = directory.stat()
    except OSError as err:
        raise StateError(
            f"cannot create state directory: {err.strerror}", where=str(directory)
        ) from err
    if not directory.is_dir():
        raise StateError("state directory is not a directory", where=str(directory))
    mode = st.st_mode & 0o777
    if mode & 0o077:
        raise StateError(
            f"state directory is open to others (mode {mode:04o})",
            where=str(directory),
            hint=f"chmod 700 {directory}",
        )
    return directory
