"""YAML loading that keeps node positions, for file:line:col errors.

Files are composed into a node tree with PyYAML's safe loader (no Python object tags).
Structure is walked node by node so every problem can point at its line; values are built
with the safe constructor. ``!unsafe`` strings (Ansible) load as
:class:`~agent.plan.unsafe.UnsafeText`, never rendered as templates; ``!vault``
values are rejected with a clear message.
"""

from __future__ import annotations

import logging
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from agent.errors import SourcePos
from agent.inventory.problems import Problems
from agent.plan.unsafe import UnsafeText, mark_unsafe

log = logging.getLogger(__name__)

MAX_NODES = 200_000  # nodes walked per document when checking for duplicate keys
MAX_EXPANDED = 1_000_000  # values in one YAML value once its aliases are expanded
MAX_INT_BITS = 1024


class _Loader(yaml.SafeLoader):
    """Safe loader that knows Ansible's ``!unsafe`` and explains ``!vault``."""


def _construct_unsafe(loader: yaml.SafeLoader, node: Node) -> Any:
    if isinstance(node, ScalarNode):
        return UnsafeText(loader.construct_scalar(node))
    if isinstance(node, SequenceNode):
        return mark_unsafe(loader.construct_sequence(node, deep=True))
    if isinstance(node, MappingNode):
        return mark_unsafe(loader.construct_mapping(node, deep=True))
    return None  # pragma: no cover - every node is one of the three


def _construct_vault(loader: yaml.SafeLoader, node: Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None, None, "ansible-vault encrypted values are not supported", node.start_mark
    )


_Loader.add_constructor("!unsafe", _construct_unsafe)
_Loader.add_constructor("!vault", _construct_vault)

# libyaml's parser composes the same nodes (tags resolved by the same Python resolver, marks with
# the same line and column) about 7x faster; a document it rejects is composed again by the
# Python parser, whose messages and positions are the ones reported.
_FastLoader: Any = None
if getattr(yaml, "__with_libyaml__", False):

    class _CLoader(yaml.CSafeLoader):
        """libyaml's safe parser, only composing (values are built by :class:`_Loader`)."""

    _FastLoader = _CLoader


def pos(path: str, node: Node | None) -> SourcePos:
    """The 1-based position of ``node`` in ``path``."""
    if node is None:
        return SourcePos(path)
    mark = node.start_mark
    return SourcePos(path, mark.line + 1, mark.column + 1)


def _error_pos(path: str, err: yaml.YAMLError) -> SourcePos:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    if mark is not None:
        return SourcePos(path, mark.line + 1, mark.column + 1)
    return SourcePos(path)


def _error_text(err: yaml.YAMLError) -> str:
    if isinstance(err, yaml.MarkedYAMLError):
        parts = [p for p in (err.context, err.problem) if p]
        return "YAML: " + (", ".join(parts) if parts else "invalid document")
    if isinstance(err, yaml.reader.ReaderError):
        return f"YAML: {err.reason} (character {err.character!r})"
    return "YAML: " + " ".join(str(err).split())[:200]


def _compose_fast(text: str) -> Node | None:
    """The node tree from libyaml (``None``: not available, empty, or rejected)."""
    if _FastLoader is None:
        return None
    try:
        node: Node | None = yaml.compose(text, Loader=_FastLoader)  # noqa: S506 - safe
    except (yaml.YAMLError, RecursionError, ValueError, TypeError):
        return None
    if node is not None and _deeper_than(node, FAST_DEPTH):
        return None  # the Python parser decides (it refuses what nests too deep for it)
    return node


FAST_DEPTH = 100  # levels of nesting libyaml's tree may have; the Python parser takes 400


def _deeper_than(root: Node, limit: int) -> bool:
    """Whether ``root`` nests more than ``limit`` levels (walked without recursion, each node
    once: an alias is the same node)."""
    seen: set[int] = set()
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if id(node) in seen or isinstance(node, ScalarNode):
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack += [(child, depth + 1) for child in node.value]
        elif isinstance(node, MappingNode):
            stack += [(part, depth + 1) for pair in node.value for part in pair]
    return False


def compose(text: str, path: str, problems: Problems) -> Node | None:
    """Compose ``text`` into one YAML node tree; a syntax error is recorded, not raised.

    Returns None for an empty document or after an error.
    """
    node = _compose_fast(text)
    try:
        if node is None:
            node = yaml.compose(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.reader.ReaderError as err:
        before = text[: max(err.position, 0)]
        line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        problems.add(SourcePos(path, line, col), _error_text(err))
        return None
    except yaml.YAMLError as err:
        problems.add(_error_pos(path, err), _error_text(err))
        return None
    except RecursionError:
        problems.add(SourcePos(path), "YAML: nesting too deep")
        return None
    if node is not None:
        _check_duplicates(node, path, problems)
    return node


def construct(node: Node, path: str, problems: Problems) -> tuple[bool, Any]:
    """Build the Python value of ``node`` (safe types only). Returns (ok, value)."""
    loader = _Loader("")
    try:
        try:
            value = loader.construct_document(node)
        finally:
            loader.dispose()
        if _has_cycle(value):
            problems.add(pos(path, node), "YAML: a value contains itself (recursive alias)")
            return False, None
        problem = _oversized(value, MAX_EXPANDED)
        if problem:
            problems.add(pos(path, node), problem)
            return False, None
        return True, value
    except yaml.YAMLError as err:
        problems.add(_error_pos(path, err), _error_text(err))
    except RecursionError:
        problems.add(pos(path, node), "YAML: nesting too deep")
    except (TypeError, ValueError) as err:  # e.g. unhashable keys, bad timestamps
        problems.add(pos(path, node), f"YAML: {' '.join(str(err).split())[:200]}")
    return False, None


def _oversized(value: Any, limit: int) -> str:
    """Why ``value`` is too large to use, or ``""``: more than ``limit`` values once every alias
    is expanded, or an integer of more than :data:`MAX_INT_BITS` bits.

    Aliases share one object, so loading a "billion laughs" document is cheap; whatever later
    walks it (``inventory --list``, a template) is not. A 5,000-digit integer cannot even be
    printed (``str()`` refuses past 4,300 digits). Call after :func:`_has_cycle`.
    """
    count = 0
    stack: list[Any] = [value]
    while stack:  # bounded: stops after ``limit`` values
        item = stack.pop()
        count += 1
        if count > limit:
            return f"YAML document too large: aliases expand to more than {limit} values"
        if isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(item.keys())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and item.bit_length() > MAX_INT_BITS:
            return f"integer too large (more than {MAX_INT_BITS} bits); quote it to keep it text"
    return ""


def _has_cycle(value: Any) -> bool:
    """True if a list or dict contains itself (YAML aliases can build such values)."""
    done: set[int] = set()
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:  # bounded: each container is entered and left once
        item, leaving = stack.pop()
        if leaving:
            on_path.discard(id(item))
            done.add(id(item))
            continue
        if not isinstance(item, (list, dict)):
            continue
        if id(item) in on_path:
            return True
        if id(item) in done:
            continue
        on_path.add(id(item))
        stack.append((item, True))
        children = list(item.keys()) + list(item.values()) if isinstance(item, dict) else item
        stack.extend((child, False) for child in children)
    return False


def scalar_key(node: Node) -> tuple[str, str] | None:
    """(tag, text) of a scalar key node, used to compare keys; None for complex keys."""
    if isinstance(node, ScalarNode):
        return (node.tag, node.value)
    return None


def _check_duplicates(root: Node, path: str, problems: Problems) -> None:
    stack: list[Node] = [root]
    seen_nodes: set[int] = set()
    count = 0
    while stack and count < MAX_NODES:
        node = stack.pop()
        count += 1
        if id(node) in seen_nodes:  # aliases share nodes
            continue
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            keys: dict[tuple[str, str], Node] = {}
            for key_node, value_node in node.value:
                key = scalar_key(key_node)
                if key is not None and key[0] != "tag:yaml.org,2002:merge":
                    if key in keys:
                        problems.add(
                            pos(path, key_node),
                            f"duplicate key {key_node.value!r}",
                            hint=f"first given at line {keys[key].start_mark.line + 1}",
                        )
                    else:
                        keys[key] = key_node
                stack.append(key_node)
                stack.append(value_node)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


def flatten(node: MappingNode, path: str, problems: Problems) -> list[tuple[Node, Node]]:
    """The (key, value) pairs of a mapping with ``<<`` merge keys applied."""
    loader = _Loader("")
    try:
        loader.flatten_mapping(node)
    except yaml.YAMLError as err:
        problems.add(_error_pos(path, err), _error_text(err))
    except RecursionError:
        problems.add(pos(path, node), "YAML: nesting too deep")
    finally:
        loader.dispose()
    return [(k, v) for k, v in node.value if k.tag != "tag:yaml.org,2002:merge"]


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def is_str(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:str"
