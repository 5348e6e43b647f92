"""Check a module's arguments against its :class:`~agent.modules.base.Arg` spec.

Used twice: statically when a plan is loaded (names, required arguments, and the types of
values that contain no template) and per host once templates are rendered (every value).
Every problem is collected; nothing is raised here, the caller attaches positions.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from agent.modules.base import Arg, ArgType, Module


class ArgProblem(Exception):
    """One argument is wrong; ``arg`` names it ('' for the whole set)."""

    def __init__(self, arg: str, message: str) -> None:
        self.arg = arg
        self.message = message
        super().__init__(message)


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def split_argv(text: str) -> list[str]:
    """Split a command line like a POSIX shell would, keeping jinja2 ``{{ }}``/``{% %}`` blocks
    whole inside their word, so a template rendered later stays one argument.

    Raises:
        ValueError: unbalanced quotes or template braces.
    """
    placeholders: list[str] = []
    out: list[str] = []
    i = 0
    while i < len(text):
        opener = text[i : i + 2]
        if opener in ("{{", "{%", "{#"):
            closer = {"{{": "}}", "{%": "%}", "{#": "#}"}[opener]
            end = text.find(closer, i + 2)
            if end < 0:
                raise ValueError(f"unclosed {opener!r} in command")
            placeholders.append(text[i : end + 2])
            out.append(f"\x01{len(placeholders) - 1}\x01")
            i = end + 2
        else:
            out.append(text[i])
            i += 1
    words = shlex.split("".join(out))
    restored: list[str] = []
    for word in words:
        parts = word.split("\x01")
        for k in range(1, len(parts), 2):
            parts[k] = placeholders[int(parts[k])]
        restored.append("".join(parts))
    return restored


def _type_name(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _to_str(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise ValueError(f"expected a string, got {_type_name(value)}")
    return str(value)


def _to_path(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"expected an absolute path, got {value!r}")
    if "\x00" in value or "\n" in value or any(s == ".." for s in value.split("/")):
        raise ValueError(f"invalid path {value!r}")
    return value


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ValueError(f"expected an integer, got {_type_name(value)}")


_TRUE_WORDS = ("yes", "true", "on", "1")
_FALSE_WORDS = ("no", "false", "off", "0")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE_WORDS + _FALSE_WORDS:
        return value.lower() in _TRUE_WORDS
    raise ValueError(f"expected a boolean, got {_type_name(value)}")


def _to_mode(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an octal mode like '0644', got a boolean")
    if isinstance(value, int):
        # YAML 1.1 reads 0644 as octal already; a decimal int like 644 is a mistake.
        if 0 <= value <= 0o7777:
            return value
    if isinstance(value, str):
        text = value.strip()
        if text and len(text) <= 5 and all(c in "01234567" for c in text):
            return int(text, 8)
    raise ValueError(f"expected an octal mode like '0644', got {value!r}")


def _to_argv(value: Any) -> list[str]:
    if isinstance(value, str):
        words = split_argv(value)
    elif isinstance(value, list) and all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
    ):
        words = [str(v) for v in value]
    else:
        raise ValueError(f"expected a command (string or list of strings), got {_type_name(value)}")
    if not words:
        raise ValueError("empty command")
    if any("\x00" in w for w in words):
        raise ValueError("command contains a NUL byte")
    return words


def _to_list(value: Any, elements: ArgType | None) -> list[Any]:
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else None
    if items is None:
        raise ValueError(f"expected a list, got {_type_name(value)}")
    if elements is not None:
        return [convert(elements, v) for v in items]
    return list(items)


def _to_dict(value: Any) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {_type_name(value)}")
    return dict(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "str": _to_str,
    "path": _to_path,
    "int": _to_int,
    "bool": _to_bool,
    "mode": _to_mode,
    "argv": _to_argv,
    "dict": _to_dict,
}


def convert(arg_type: ArgType, value: Any, *, elements: ArgType | None = None) -> Any:
    """Return ``value`` converted to ``arg_type``.

    Raises:
        ValueError: with a message naming what was expected.
    """
    if arg_type == "raw":
        return value
    if arg_type == "list":
        return _to_list(value, elements)
    converter = _CONVERTERS.get(arg_type)
    if converter is None:
        raise ValueError(f"unknown argument type {arg_type!r}")  # pragma: no cover
    return converter(value)


def check_names(module: type[Module], given: Mapping[str, Any]) -> list[ArgProblem]:
    """Unknown and missing argument names (the static part of the check)."""
    problems: list[ArgProblem] = []
    names = [a.name for a in module.args]
    for key in given:
        if key not in names:
            accepted = ", ".join(sorted(names)) or "none"
            problems.append(
                ArgProblem(
                    str(key),
                    f"unknown argument {key!r} for module {module.name!r}{suggest(str(key), names)}"
                    f"; accepted: {accepted}",
                )
            )
    for arg in module.args:
        if arg.required and arg.name not in given:
            problems.append(
                ArgProblem(arg.name, f"module {module.name!r} requires argument {arg.name!r}")
            )
        elif arg.required and given[arg.name] is None:
            # null means "the default", and a required argument has none
            problems.append(ArgProblem(arg.name, f"argument {arg.name!r} must not be null"))
    return problems


def check_value(arg: Arg, value: Any) -> Any:
    """Convert one value; raise :class:`ArgProblem` naming the argument when it is wrong."""
    try:
        converted = convert(arg.type, value, elements=arg.elements)
    except ValueError as err:
        shown = "" if arg.secret else f" {err}"
        raise ArgProblem(arg.name, f"argument {arg.name!r}:{shown or ' wrong value'}") from None
    if arg.choices and converted not in arg.choices:
        choices = ", ".join(repr(c) for c in arg.choices)
        hint = suggest(str(converted), [str(c) for c in arg.choices])
        raise ArgProblem(
            arg.name,
            f"argument {arg.name!r} must be one of {choices}, got "
            f"{'<secret>' if arg.secret else repr(converted)}{hint}",
        )
    return converted


def check_args(
    module: type[Module], given: Mapping[str, Any]
) -> tuple[dict[str, Any], list[ArgProblem]]:
    """Validate and convert a rendered argument set; defaults fill what is missing.

    Returns:
        The params (every declared argument present) and the problems found.
    """
    problems = check_names(module, given)
    params: dict[str, Any] = {}
    for arg in module.args:
        if arg.name in given and given[arg.name] is not None:
            try:
                params[arg.name] = check_value(arg, given[arg.name])
            except ArgProblem as problem:
                problems.append(problem)
        else:
            params[arg.name] = arg.default
    if not problems:
        problems.extend(ArgProblem("", msg) for msg in module.check_params(params))
    return params, problems
