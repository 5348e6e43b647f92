"""The one registry pattern: a plain dict from the name used in plans and inventories to a
loader of the class that implements it (``lazy("package.module:Class")``), so a backend's
imports cost nothing until it is used, and one lookup that turns an unknown name into a
one-line error with a suggestion. Modules, issuers and server adapters are registered this
way."""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

from agent.errors import ValidationError

Loader = Callable[[], type[Any]]
_lock = threading.Lock()


def lazy(target: str) -> Loader:
    """A loader of ``"package.module:Class"``, importing it on first call only."""
    module_path, _, attr = target.partition(":")
    loaded: list[type[Any]] = []

    def load() -> type[Any]:
        if not loaded:
            cls = getattr(importlib.import_module(module_path), attr)
            with _lock:
                if not loaded:
                    loaded.append(cls)
        return loaded[0]

    load.__qualname__ = f"lazy({target})"
    return load


def suggestion(name: str, known: Mapping[str, Any] | list[str], kind: str) -> str:
    """``did you mean 'x'?`` for a near miss, else the accepted names."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    return f"did you mean {close[0]!r}?" if close else f"{kind}s: {', '.join(names)}"


def lookup(registry: Mapping[str, Loader], name: str, *, kind: str, where: str = "") -> type[Any]:
    """The class registered as ``name``.

    Raises:
        ValidationError: no ``kind`` has that name (with a did-you-mean hint).
    """
    loader = registry.get(name)
    if loader is None:
        raise ValidationError(
            f"unknown {kind} {name!r}", where=where, hint=suggestion(name, registry, kind)
        )
    return loader()
