"""``group_vars/`` and ``host_vars/`` beside an inventory source.

For an entity NAME the folder may hold one of: a file ``NAME``, ``NAME.yml``, ``NAME.yaml``,
``NAME.json``, or a directory ``NAME/`` whose files (no extension or one of those, sorted by
name, recursively; hidden and ``~`` files skipped) are merged in order. Giving NAME two ways
(``web.yml`` and ``web/``) is reported instead of silently ignoring one. Each file holds a
mapping of variables (an empty file is fine).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Collection
from typing import Any

from yaml.nodes import MappingNode

from agent.errors import SourcePos
from agent.inventory.problems import Problems
from agent.inventory.yamlload import compose, construct, flatten, is_null, is_str, pos

log = logging.getLogger(__name__)

EXTENSIONS = (".yml", ".yaml", ".json")
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DIR_DEPTH = 8
MAX_FILES = 10_000


def read_text(path: str, problems: Problems) -> str | None:
    """The UTF-8 text of ``path``, or None (problem recorded)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; only regular files are read
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                problems.add(SourcePos(path), "not a regular file (a FIFO, device or directory)")
                return None
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        problems.add(SourcePos(path), f"cannot read: {err.strerror or err}")
        return None
    if len(data) > MAX_FILE_BYTES:
        problems.add(SourcePos(path), f"file is larger than {MAX_FILE_BYTES} bytes")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        problems.add(SourcePos(path, line), "file is not valid UTF-8")
        return None
    return text.removeprefix("\ufeff")


class VarsFiles:
    """Finds and loads variable files, each at most once."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self._cache: dict[str, dict[str, Any]] = {}
        self._lookups: dict[tuple[str, str, str], dict[str, Any]] = {}

    def lookup(self, basedir: str, kind: str, name: str) -> dict[str, Any]:
        """Variables for entity ``name`` from ``basedir/kind`` (``group_vars``/``host_vars``)."""
        key = (basedir, kind, name)
        if key not in self._lookups:
            self._lookups[key] = self._lookup(basedir, kind, name)
        return self._lookups[key]

    def _lookup(self, basedir: str, kind: str, name: str) -> dict[str, Any]:
        if not name or "/" in name or name in (".", "..") or "\x00" in name:
            return {}
        folder = os.path.join(basedir, kind)
        if not os.path.isdir(folder):
            return {}
        found = [
            c
            for c in (name, *(name + ext for ext in EXTENSIONS))
            if os.path.lexists(os.path.join(folder, c))
        ]
        if not found:
            return {}
        if len(found) > 1:
            self.problems.add(
                SourcePos(os.path.join(folder, found[1])),
                f"variables for {name!r} are given twice: {found[0]!r} and {found[1]!r}",
                hint="keep one",
            )
            return {}
        target = os.path.join(folder, found[0])
        files = self._dir_files(target, 0) if os.path.isdir(target) else [target]
        data: dict[str, Any] = {}
        for path in files[:MAX_FILES]:
            data.update(self.load(path))
        return data

    def _dir_files(self, folder: str, depth: int) -> list[str]:
        if depth > MAX_DIR_DEPTH:
            self.problems.add(SourcePos(folder), "variable directories nested too deep")
            return []
        try:
            entries = sorted(os.listdir(folder))
        except OSError as err:
            self.problems.add(SourcePos(folder), f"cannot list: {err.strerror or err}")
            return []
        found: list[str] = []
        for entry in entries:
            if entry.startswith(".") or entry.endswith("~"):
                continue
            full = os.path.join(folder, entry)
            ext = os.path.splitext(entry)[1]
            if os.path.isdir(full) and not ext:
                found.extend(self._dir_files(full, depth + 1))
            elif os.path.isfile(full) and (not ext or ext in EXTENSIONS):
                found.append(full)
        return found

    def load(self, path: str) -> dict[str, Any]:
        """The variables in one file (cached); problems are recorded, never raised."""
        if path in self._cache:
            return self._cache[path]
        result: dict[str, Any] = {}
        self._cache[path] = result
        text = read_text(path, self.problems)
        if text is None:
            return result
        root = compose(text, path, self.problems)
        if root is None or is_null(root):
            return result
        if not isinstance(root, MappingNode):
            self.problems.add(pos(path, root), "a variables file must hold a mapping of names")
            return result
        for key_node, value_node in flatten(root, path, self.problems):
            if not is_str(key_node):
                self.problems.add(
                    pos(path, key_node),
                    f"variable name {getattr(key_node, 'value', '?')!r} must be a string",
                )
                continue
            ok, value = construct(value_node, path, self.problems)
            if ok:
                result[str(key_node.value)] = value
        return result


def warn_unmatched(basedir: str, kind: str, names: Collection[str]) -> list[str]:
    """Log (and return) entries of ``basedir/kind`` that match no inventory name: a typo
    there would otherwise be silently ignored."""
    folder = os.path.join(basedir, kind)
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return []
    unmatched = []
    for entry in entries:
        if entry.startswith(".") or entry.endswith("~"):
            continue
        stem, ext = os.path.splitext(entry)
        name = stem if ext in EXTENSIONS else entry
        if name not in names and entry not in names:
            unmatched.append(os.path.join(folder, entry))
    for path in unmatched:
        log.warning("%s matches no %s in the inventory; ignored", path, kind[:-5])
    return unmatched
