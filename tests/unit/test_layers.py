"""Imports only point down DESIGN.md's list of layers (a module may import its own layer and
any layer below it, never one above)."""

from __future__ import annotations

import ast
from pathlib import Path

AGENT = Path(__file__).resolve().parents[2] / "agent"

# Top to bottom, as in DESIGN.md, except that the runner sits above the plan layer: DESIGN
# lists them in the order data flows (a plan is loaded, then run), while the runner imports the
# plan's model and variable rendering to run it; `fleet` (the Celery executor and its worker
# task) drives the runner and the modules from above them. `commands`, `jobs` and `lab` are the CLI's;
# `errors`, `secret`, `validate`, `sandbox` and `resources` (where the shipped files are) are shared
# by every layer.
LAYERS = [
    "cli",
    "fleet",
    "inventory",
    "runner",
    "plan",
    "modules",
    "pki",
    "servers",
    "transport",
    "report",
    "state",
]
OF_CLI = {"cli", "__main__", "commands", "jobs", "lab"}
SHARED = {"errors", "secret", "resources", "registry", "validate", "sandbox", "__init__"}


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name inside ``agent`` (None: shared)."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "__init__"
    if head in SHARED:
        return None
    return "cli" if head in OF_CLI else head


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                (node.lineno, alias.name) for alias in node.names if alias.name.startswith("agent")
            ]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("agent")
            and not node.level
        ):
            found.append((node.lineno, node.module))
    return found


def test_every_package_is_a_known_layer() -> None:
    packages = {p.name for p in AGENT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYERS) | OF_CLI


def test_imports_only_point_down_the_layers() -> None:
    wrong = []
    for path in sorted(AGENT.rglob("*.py")):
        module = "agent." + ".".join(path.relative_to(AGENT).with_suffix("").parts)
        source = layer_of(module)
        if source is None:
            continue
        for line, target in imports(path):
            dest = layer_of(target)
            if dest is None:
                continue
            if LAYERS.index(dest) < LAYERS.index(source):
                wrong.append(
                    f"{path.relative_to(AGENT.parent)}:{line}: {source} imports {target} ({dest})"
                )
    assert wrong == []


VALIDATORS = {"check_hostname", "check_path", "check_port", "check_address", "check_secret_url"}


def test_validators_are_defined_in_the_validation_module_only() -> None:
    defined: dict[str, list[str]] = {}
    for path in sorted(AGENT.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in VALIDATORS:
                defined.setdefault(node.name, []).append(str(path.relative_to(AGENT.parent)))
    assert defined == {name: ["agent/validate.py"] for name in VALIDATORS}


def test_nothing_imports_a_validator_from_the_shell_quoting_module() -> None:
    wrong = []
    for path in sorted([*AGENT.rglob("*.py"), *(AGENT.parent / "tests").rglob("*.py")]):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "agent.transport.quote":
                names = {alias.name for alias in node.names}
                if names - {"join"}:
                    wrong.append(f"{path.relative_to(AGENT.parent)}:{node.lineno}")
    assert wrong == []
