"""Rendering our templates (``templates/<server>/*.j2``) with jinja2, errors naming file and line.

``TEMPLATES_DIR`` is the repository root's ``templates/`` or the installed copy (see
:mod:`agent.resources`).
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from agent.errors import ServerConfigError, SourcePos
from agent.resources import data_dir
from agent.sandbox import BoundedSandbox, bounded_output, reset_budget

TEMPLATES_DIR = data_dir("templates")

_loading = threading.Lock()


@functools.lru_cache(maxsize=32)
def _environment(directory: str) -> jinja2.Environment:
    """One environment per template directory: templates are compiled once per run, not once
    per host (jinja2 environments are safe to share between threads once configured)."""
    return BoundedSandbox(  # a site_template is input: no escapes, sizes and loops bounded
        loader=jinja2.FileSystemLoader(directory),
        auto_reload=False,  # templates do not change during a run: no stat per host
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_template(path: Path, variables: Mapping[str, Any]) -> str:
    """Render the jinja2 template at ``path`` with ``StrictUndefined``.

    Raises:
        ServerConfigError: the template is missing, does not parse, or uses an undefined
            variable; ``where`` names the template file and line.
    """
    env = _environment(str(path.parent))
    try:
        with _loading:  # N hosts asking at once would otherwise compile it N times
            template = env.get_template(path.name)
        reset_budget()
        return bounded_output(template.generate(**variables))
    except jinja2.TemplateNotFound:
        raise ServerConfigError("template not found", where=str(path)) from None
    except jinja2.TemplateSyntaxError as err:
        raise ServerConfigError(
            f"template error: {err.message}", where=SourcePos(str(path), err.lineno or 0)
        ) from err
    except jinja2.TemplateError as err:
        line = 0
        tb = sys.exc_info()[2]
        while tb is not None:  # jinja2 maps template frames to the template's file and line
            if Path(tb.tb_frame.f_code.co_filename) == path:
                line = tb.tb_lineno
            tb = tb.tb_next
        raise ServerConfigError(f"template error: {err}", where=SourcePos(str(path), line)) from err
