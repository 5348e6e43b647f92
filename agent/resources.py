"""Where the files that ship beside the package are: ``templates/`` and ``plans/``.

In a checkout (and an editable install, which ``make`` uses) they are at the repository root,
next to ``agent/``. A wheel installs them as data files under the installation prefix,
``share/origin-agent/{templates,plans}``.
"""

from __future__ import annotations

import site
import sys
import sysconfig
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]


def data_dir(name: str) -> Path:
    """The directory ``name`` ("templates" or "plans").

    A checkout is recognised by its ``pyproject.toml`` (a site-packages directory has none, and
    another distribution's top-level ``templates/`` there must not be taken for ours). When the
    directory is found nowhere, the checkout path is returned: callers then report the missing
    file by its full path.
    """
    if (_ROOT / "pyproject.toml").is_file() and (_ROOT / name).is_dir():
        return _ROOT / name
    for base in (sys.prefix, sysconfig.get_path("data"), site.USER_BASE or ""):
        candidate = Path(base) / "share" / "origin-agent" / name
        if base and candidate.is_dir():
            return candidate
    return _ROOT / name
