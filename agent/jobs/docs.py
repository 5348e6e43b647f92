"""``origin-agent doc``: the reference, rendered from the code as Markdown.

Module arguments come from each module's ``args`` (the specs the plan validator checks tasks
against), issuer keys from each backend's ``keys`` (the specs its ``from_config`` validates
with), and the variables, exit codes and origin files from :mod:`agent.jobs.docs_data`. The
same text is printed by ``origin-agent doc TOPIC`` and written to ``docs/`` by ``origin-agent doc
--write docs/``; a unit test regenerates ``docs/`` and fails when the checked-in copy differs.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent.errors import UsageError
from agent.jobs import docs_data
from agent.modules import registry as modules
from agent.modules.base import Arg, Module
from agent.pki.issuers.base import REGISTRY as ISSUERS
from agent.pki.issuers.base import Issuer
from agent.pki.issuers.keys import Key
from agent.registry import suggestion

GENERATED = "Generated from the code by `origin-agent doc --write docs/`; do not edit by hand."
TOPICS = ("vars", "exit-codes", "files")

_ROLE = re.compile(r":\w+:`~?([^`]+)`")


def _summary(cls: type) -> str:
    """The first paragraph of the class's own docstring, on one line, in Markdown."""
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    text = " ".join(doc.split("\n\n")[0].split())
    return _ROLE.sub(r"`\1`", text).replace("``", "`")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value: Any) -> str:
    """A value as YAML would show it ('' for none)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value)
    return str(value)


def _code(value: Any) -> str:
    text = _value(value)
    return f"`{text}`" if text else ""


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _arg_type(arg: Arg) -> str:
    return f"list of {arg.elements}" if arg.type == "list" and arg.elements else arg.type


def _arg_row(arg: Arg) -> list[str]:
    return [
        f"`{arg.name}`",
        _arg_type(arg),
        "yes" if arg.required else "",
        _code(arg.default),
        ", ".join(f"`{_value(c)}`" for c in arg.choices),
        arg.help + (" (secret: never shown)" if arg.secret else ""),
    ]


def module_doc(name: str) -> str:
    """One module: what it does, every argument of its spec, and an example task.

    Raises:
        UsageError: no module has that name.
    """
    cls = _module(name)
    lines = [f"## {cls.name}", "", _summary(cls), ""]
    if cls.free_form:
        lines += [f"A plain string stands for `{cls.free_form}`: `{cls.name}: TEXT`.", ""]
    if cls.args:
        head = ("argument", "type", "required", "default", "choices", "description")
        lines += _table(head, [_arg_row(a) for a in cls.args]) + [""]
    else:
        lines += ["No arguments.", ""]
    if cls.example:
        lines += ["Example:", "", "```yaml", cls.example.rstrip("\n"), "```", ""]
    return "\n".join(lines)


def _module(name: str) -> type[Module]:
    if name not in modules.REGISTRY:
        raise UsageError(f"no module {name!r}", hint=suggestion(name, modules.REGISTRY, "module"))
    return modules.get(name)


def _issuer(name: str) -> type[Issuer]:
    if name not in ISSUERS:
        raise UsageError(f"no issuer {name!r}", hint=suggestion(name, ISSUERS, "issuer"))
    cls: type[Issuer] = ISSUERS[name]()
    return cls


def _key_type(key: Key) -> str:
    if key.type == "env":
        return "environment variable name"
    if key.type in ("file", "directory"):
        return f"{key.type} on the controller"
    return key.type


def _key_row(key: Key) -> list[str]:
    return [
        f"`{key.name}`",
        _key_type(key),
        "yes" if key.required else "",
        _code(key.default),
        ", ".join(f"`{_value(c)}`" for c in key.choices),
        key.help,
    ]


def issuer_doc(name: str) -> str:
    """One issuer backend: what it is, every key of its ``issuer:`` mapping, and an example.

    Raises:
        UsageError: no issuer has that name.
    """
    cls = _issuer(name)
    lines = [f"## {name}", "", _summary(cls), ""]
    if cls.keys:
        lines += [f"The `issuer:` mapping takes `backend: {name}` and:", ""]
        head = ("key", "type", "required", "default", "choices", "description")
        lines += _table(head, [_key_row(k) for k in cls.keys]) + [""]
    else:
        lines += [f"The `issuer:` mapping takes `backend: {name}` and nothing else.", ""]
    example = [f"  {line}" for line in cls.example.splitlines()] or [f"  backend: {name}"]
    lines += ["Example (a host or group variable):", "", "```yaml", "issuer:", *example, "```", ""]
    return "\n".join(lines)


def variables_doc() -> str:
    """The inventory variables the tool reads."""
    lines = [
        "Host and group variables, from the inventory (Ansible's YAML and INI formats), "
        "`host_vars/` and `group_vars/`. Any `tls_origin` argument may also be set as a "
        "variable of the same name where a plan passes it on (as plans/rotate.yml does).",
        "",
    ]
    for title, variables in docs_data.variable_groups():
        lines += [f"## {title}", ""]
        rows = [
            [
                f"`{v.name}`",
                ", ".join(f"`{a}`" for a in v.aliases),
                v.type,
                v.default,
                v.help,
            ]
            for v in variables
        ]
        lines += _table(("variable", "also read as", "type", "default", "description"), rows)
        lines.append("")
    return "\n".join(lines)


def exit_codes_doc() -> str:
    """The exit statuses of the CLI."""
    rows = [[str(code), text] for code, text in docs_data.exit_codes()]
    return "\n".join([*_table(("code", "meaning"), rows), ""])


def files_doc() -> str:
    """What the TLS step writes on an origin."""
    lines = [
        "For each site NAME (the `site` argument; default: the first of its names), as the "
        "TLS step's transaction writes them; `--check --diff` lists every write of a run.",
        "",
    ]
    rows = [[f"`{path}`", mode, text] for path, mode, text in docs_data.origin_files()]
    lines += _table(("path", "mode", "what"), rows)
    return "\n".join([*lines, ""])


def modules_doc() -> str:
    return "\n".join(module_doc(name) for name in modules.REGISTRY)


def issuers_doc() -> str:
    return "\n".join(issuer_doc(name) for name in ISSUERS)


def index() -> str:
    """What ``origin-agent doc`` prints without a topic: modules, issuers, other topics."""
    lines = ["Modules (origin-agent doc MODULE):", ""]
    lines += [f"  {n:<12} {_summary(modules.get(n))}" for n in modules.REGISTRY]
    lines += ["", "Issuers (origin-agent doc ISSUER):", ""]
    lines += [f"  {n:<12} {_summary(_issuer(n))}" for n in ISSUERS]
    lines += ["", "Also: origin-agent doc vars | exit-codes | files", ""]
    return "\n".join(lines)


_TOPIC_DOCS: dict[str, Callable[[], str]] = {
    "vars": variables_doc,
    "exit-codes": exit_codes_doc,
    "files": files_doc,
}

PAGES: dict[str, tuple[str, Callable[[], str]]] = {
    "modules.md": ("Modules", modules_doc),
    "issuers.md": ("Issuers", issuers_doc),
    "variables.md": ("Inventory variables", variables_doc),
    "exit-codes.md": ("Exit codes", exit_codes_doc),
    "origin-files.md": ("Files on an origin", files_doc),
}


def topic(word: str) -> str:
    """The text for ``origin-agent doc WORD``: a module, an issuer or a topic.

    Raises:
        UsageError: WORD is none of them (with a did-you-mean hint).
    """
    if word in modules.REGISTRY:
        return module_doc(word)
    if word in ISSUERS:
        return issuer_doc(word)
    if word in _TOPIC_DOCS:
        return _TOPIC_DOCS[word]()
    known = [*modules.REGISTRY, *ISSUERS, *TOPICS]
    raise UsageError(f"no module, issuer or topic {word!r}", hint=suggestion(word, known, "topic"))


def page(filename: str) -> str:
    """The whole text of one page of ``docs/``."""
    title, render = PAGES[filename]
    return f"# {title}\n\n{GENERATED}\n\n{render().rstrip()}\n"


def write(directory: Path) -> list[Path]:
    """Write every page of the reference into ``directory`` (made if missing); returns the
    paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename in PAGES:
        path = directory / filename
        path.write_text(page(filename))
        written.append(path)
    return written
