"""Read YAML keeping where every value came from.

:func:`load_yaml` returns plain Python values, except that mappings are :class:`PosDict` and
sequences :class:`PosList`: ``.pos`` is where the collection starts, ``.key_pos[k]`` where key
``k`` is written and ``.value_pos[k]`` (``.item_pos[i]``) where its value starts. Duplicate keys
and YAML syntax errors are :class:`~agent.errors.PlanError` with file:line:col.
"""

from __future__ import annotations

import copy
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from agent.errors import PlanError, SourcePos
from agent.plan.unsafe import mark_unsafe

MAX_DEPTH = 64
MAX_BYTES = 8 * 1024 * 1024
MAX_NODES = 200_000  # aliases can expand a small file enormously ("billion laughs")


class PosDict(dict[Any, Any]):
    """A mapping that knows where it and each of its keys and values were written."""

    pos: SourcePos
    key_pos: dict[Any, SourcePos]
    value_pos: dict[Any, SourcePos]

    def __init__(self, pos: SourcePos) -> None:
        super().__init__()
        self.pos = pos
        self.key_pos = {}
        self.value_pos = {}

    def where(self, key: Any) -> SourcePos:
        """Position of ``key``'s value if present, else of the mapping."""
        return self.value_pos.get(key, self.pos)


class PosList(list[Any]):
    """A sequence that knows where it and each item were written."""

    pos: SourcePos
    item_pos: list[SourcePos]

    def __init__(self, pos: SourcePos) -> None:
        super().__init__()
        self.pos = pos
        self.item_pos = []

    def where(self, index: int) -> SourcePos:
        return self.item_pos[index] if 0 <= index < len(self.item_pos) else self.pos


def _pos(file: str, node: yaml.Node) -> SourcePos:
    mark = node.start_mark
    return SourcePos(file, mark.line + 1, mark.column + 1)


_DEFAULT_TAGS: dict[type, str] = {
    yaml.MappingNode: "tag:yaml.org,2002:map",
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
    yaml.ScalarNode: "tag:yaml.org,2002:str",
}


class _Builder:
    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.count = 0

    def build(self, node: yaml.Node, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise PlanError(
                "YAML document too large (aliases expand to too many values)",
                where=_pos(self.file, node),
            )
        if depth > MAX_DEPTH:
            raise PlanError("YAML nested too deeply", where=_pos(self.file, node))
        if node.tag == "!unsafe":  # Ansible's: data, never a template
            plain = copy.copy(node)  # an alias shares the node: leave its tag alone
            plain.tag = _DEFAULT_TAGS[type(node)]
            return mark_unsafe(self.build(plain, depth))
        if (
            isinstance(node, yaml.MappingNode | yaml.SequenceNode)
            and node.tag not in (_DEFAULT_TAGS[type(node)])
        ):
            raise PlanError(f"unsupported YAML tag {node.tag[:40]!r}", where=_pos(self.file, node))
        if isinstance(node, yaml.MappingNode):
            out = PosDict(_pos(self.file, node))
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise PlanError(
                        "YAML merge keys ('<<') are not supported", where=_pos(self.file, key_node)
                    )
                key = self.build(key_node, depth + 1)
                if isinstance(key, (dict, list)):
                    raise PlanError(
                        "a mapping key must be a plain value", where=_pos(self.file, key_node)
                    )
                if key in out:
                    raise PlanError(
                        f"duplicate key {key!r}",
                        where=_pos(self.file, key_node),
                        hint=f"first given at {out.key_pos[key]}",
                    )
                out[key] = self.build(value_node, depth + 1)
                out.key_pos[key] = _pos(self.file, key_node)
                out.value_pos[key] = _pos(self.file, value_node)
            return out
        if isinstance(node, yaml.SequenceNode):
            seq = PosList(_pos(self.file, node))
            for item in node.value:
                seq.append(self.build(item, depth + 1))
                seq.item_pos.append(_pos(self.file, item))
            return seq
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            raise PlanError(f"bad YAML value: {err}", where=_pos(self.file, node)) from err
        if isinstance(value, (bytes, bytearray)):
            raise PlanError("binary YAML values are not supported", where=_pos(self.file, node))
        if not isinstance(value, (str, int, float, bool, type(None))):
            value = str(value)  # dates and timestamps stay text
        if isinstance(value, int) and value.bit_length() > 1024:  # str() refuses 4,300+ digits
            raise PlanError(
                "integer too large (more than 1024 bits); quote it to keep it text",
                where=_pos(self.file, node),
            )
        return value


def load_yaml_text(text: str, file: str) -> Any:
    """Parse ``text`` (one YAML document) keeping positions; ``None`` for an empty document.

    Raises:
        PlanError: a syntax error, a duplicate key, more than one document.
    """
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as err:  # the reader rejects control characters up front
        raise PlanError(f"YAML error: {' '.join(str(err).split())}", where=file) from err
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            where = SourcePos(file, mark.line + 1, mark.column + 1) if mark else SourcePos(file)
            problem = " ".join(str(err.problem or err.context or "syntax error").split())
            hint = ""
            if err.context and err.context_mark is not None and err.problem:
                cm = err.context_mark
                hint = f"{' '.join(err.context.split())} at {file}:{cm.line + 1}:{cm.column + 1}"
            raise PlanError(f"YAML syntax error: {problem}", where=where, hint=hint) from err
        except yaml.YAMLError as err:
            raise PlanError(f"YAML error: {' '.join(str(err).split())}", where=file) from err
        if node is None:
            return None
        try:
            return _Builder(file, loader).build(node)
        except RecursionError as err:
            raise PlanError("YAML nested too deeply", where=file) from err
    finally:
        loader.dispose()


def load_yaml(path: str | Path) -> Any:
    """Read and parse a YAML file keeping positions.

    Raises:
        PlanError: unreadable file, or see :func:`load_yaml_text`.
    """
    name = str(path)
    try:
        # O_NONBLOCK: a FIFO must not hang the run; only a regular file is read, and only
        # up to the limit (-e @/dev/zero would otherwise fill the memory)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise PlanError("not a regular file (a FIFO, device or directory)", where=name)
            raw = fh.read(MAX_BYTES + 1)
    except OSError as err:
        raise PlanError(f"cannot read file: {err.strerror}", where=name) from err
    if len(raw) > MAX_BYTES:
        raise PlanError("file too large", where=name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PlanError("file is not UTF-8 text", where=name) from err
    return load_yaml_text(text, name)
