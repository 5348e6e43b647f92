"""No function in agent/ or bench/ longer than 60 lines and no module longer than 400 lines,
unless the module's docstring names the exception and says why.

How lengths are counted: a module's length is its number of lines; a function's is from its
``def`` line to its last line (``end_lineno - lineno + 1``: decorators left out; docstring,
comments and blank lines inside it counted).

How an exception is named: a line of the module docstring of the form

    Size exception: NAME: reason

where NAME is ``module`` for the module's own length, or the function's dotted name within
the module (``function``, ``Class.method``, ``outer.inner``), and the reason is not empty.
An exception that no longer applies (the function is gone or short again) fails the test, so
that the docstring says only what is true.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("agent", "bench")
MAX_FUNCTION = 60
MAX_MODULE = 400
EXCEPTION = re.compile(r"^\s*Size exception:\s*([\w.]+)\s*:(.*)$")

# Being changed on other branches; to be split next. Each entry: (module path, NAME as above).
PENDING = {}


def modules() -> list[Path]:
    """Every module of agent/ and bench/ (not what lives in hidden directories, such as the
    benchmark's own Ansible virtualenv)."""
    found: list[Path] = []
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            if not any(part.startswith(".") for part in path.relative_to(REPO).parts):
                found.append(path)
    return found


def functions(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(dotted name, length in lines) of every function and method, nested ones included."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                yield name, (child.end_lineno or child.lineno) - child.lineno + 1
                yield from walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


@dataclass(frozen=True)
class Sizes:
    """What in one module is over the limits, and the exceptions its docstring names."""

    over: dict[str, str]  # NAME -> its length, in words
    named: dict[str, str]  # NAME -> reason given


def sizes(path: Path) -> Sizes:
    text = path.read_text()
    tree = ast.parse(text, str(path))
    over: dict[str, str] = {}
    length = len(text.splitlines())
    if length > MAX_MODULE:
        over["module"] = f"{length} lines (limit {MAX_MODULE})"
    for name, lines in functions(tree):
        if lines > MAX_FUNCTION:
            over[name] = f"{lines} lines (limit {MAX_FUNCTION})"
    named: dict[str, str] = {}
    for line in (ast.get_docstring(tree) or "").splitlines():
        match = EXCEPTION.match(line)
        if match:
            named[match.group(1)] = match.group(2).strip()
    return Sizes(over, named)


def survey() -> tuple[list[str], list[str]]:
    """Problems (too long and not excused) and stale excuses, one line each."""
    problems: list[str] = []
    stale: list[str] = []
    for path in modules():
        rel = path.relative_to(REPO).as_posix()
        found = sizes(path)
        for name, length in sorted(found.over.items()):
            if (rel, name) in PENDING:
                continue
            reason = found.named.get(name)
            if reason is None:
                problems.append(f"{rel}: {name}: {length}, and no size exception is named")
            elif not reason:
                problems.append(f"{rel}: {name}: {length}; its size exception gives no reason")
        for name in sorted(set(found.named) - set(found.over)):
            stale.append(f"{rel}: size exception for {name!r}, which is within the limits")
    for rel, name in sorted(PENDING):
        path = REPO / rel
        if not path.exists() or name not in sizes(path).over:
            stale.append(f"{rel}: {name!r} is within the limits now: remove it from PENDING")
    return problems, stale


def test_no_function_over_60_lines_and_no_module_over_400_without_a_named_reason() -> None:
    problems, _ = survey()
    assert not problems, "\n".join(problems)


def test_every_named_exception_and_pending_entry_is_still_needed() -> None:
    _, stale = survey()
    assert not stale, "\n".join(stale)


def test_the_survey_sees_methods_nested_functions_and_docstring_exceptions(
    tmp_path: Path,
) -> None:
    def long_body(indent: str) -> list[str]:
        return [f"{indent}x = {i}" for i in range(MAX_FUNCTION)]

    source = [
        '"""A module.',
        "",
        "Size exception: Big.run: one protocol exchange, read best whole.",
        "Size exception: module:",
        '"""',
        "class Big:",
        "    def run(self) -> None:",
        *long_body(" " * 8),
        "def outer() -> None:",
        "    def inner() -> None:",
        *long_body(" " * 8),
        "def short() -> None:",
        "    pass",
    ]
    path = tmp_path / "sample.py"
    path.write_text("\n".join(source) + "\n")
    found = sizes(path)
    assert set(found.over) == {"Big.run", "outer", "outer.inner"}
    assert found.named == {"Big.run": "one protocol exchange, read best whole.", "module": ""}
