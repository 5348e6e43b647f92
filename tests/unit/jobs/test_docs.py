"""`origin-agent doc` and the checked-in docs/: rendered from the specs the code validates with,
and held in step with the code."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.cli import main
from agent.errors import IssuerError
from agent.jobs import docs, docs_data
from agent.modules import registry as modules
from agent.modules.tls.origin import TlsOriginModule
from agent.pki.issuers.base import REGISTRY as ISSUERS
from agent.pki.issuers.keys import names, paths, required
from agent.plan.parse import load_plan

REPO = Path(__file__).resolve().parents[3]
REGENERATE = "regenerate it with: origin-agent doc --write docs/ (and commit docs/)"


def _rows(text: str) -> dict[str, str]:
    """First-column name -> the whole table row, for every row of a Markdown table."""
    found = re.findall(r"^\| `([^`]+)` \|(.*)$", text, re.M)
    return {name: rest for name, rest in found}


def test_doc_tls_origin_lists_every_argument_of_the_spec(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["doc", "tls_origin"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert list(rows) == [a.name for a in TlsOriginModule.args]
    for arg in TlsOriginModule.args:
        cells = [c.strip() for c in rows[arg.name].split(" | ")]
        assert arg.help and arg.help in rows[arg.name]
        for choice in arg.choices:
            assert f"`{choice}`" in cells[3]
        if arg.default is not None:
            assert f"`{docs._value(arg.default)}`" == cells[2]


def test_checked_in_docs_are_what_the_code_generates(tmp_path: Path) -> None:
    docs.write(tmp_path)
    checked_in = REPO / "docs"
    stale = [
        name
        for name in docs.PAGES
        if not (checked_in / name).exists()
        or (checked_in / name).read_text() != (tmp_path / name).read_text()
    ]
    assert not stale, f"docs/ is out of step with the code ({', '.join(stale)}); {REGENERATE}"
    extra = sorted({p.name for p in checked_in.glob("*.md")} - set(docs.PAGES))
    assert not extra, f"docs/ has pages the code does not make: {extra}; {REGENERATE}"


@pytest.mark.parametrize("name", modules.names())
def test_every_module_documents_each_argument_and_has_an_example_a_plan_accepts(
    name: str, tmp_path: Path
) -> None:
    cls = modules.get(name)
    assert all(arg.help for arg in cls.args), [a.name for a in cls.args if not a.help]
    assert cls.example, f"module {name} has no example"
    tasks = "".join(f"    {line}\n" if line else "\n" for line in cls.example.splitlines())
    plan = tmp_path / "example.yml"
    handler = "  handlers:\n    - name: reload web server\n      reload: {}\n"  # examples notify it
    plan.write_text(f"- hosts: all\n  tasks:\n{tasks}{handler}")
    loaded = load_plan(str(plan))  # raises PlanError naming every problem
    assert loaded.plays[0].tasks[0].module == name


@pytest.mark.parametrize("name", sorted(ISSUERS))
def test_each_issuer_validates_exactly_the_keys_its_doc_lists(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cls = ISSUERS[name]()
    assert cls.path_keys == paths(cls.keys)
    assert all(key.help for key in cls.keys)
    with pytest.raises(IssuerError) as err:
        cls.from_config({"backend": name, "no_such_key": 1})
    assert "unknown key 'no_such_key'" in str(err.value)
    accepted = set(err.value.hint.split(": ", 1)[1].split(", ")) - {"backend"}
    assert accepted == set(names(cls.keys))
    assert main(["doc", name]) == 0
    assert list(_rows(capsys.readouterr().out)) == list(names(cls.keys))
    example = yaml.safe_load(cls.example)
    assert example["backend"] == name
    assert set(example) - {"backend"} <= set(names(cls.keys))
    assert set(required(cls.keys)) <= set(example)


def _names_read_by_the_code() -> set[str]:
    """Variable names the code reads literally: ``vars.get("x")``, ``vars["x"]``,
    ``variables.get("x")``, and ``{{ x`` in the shipped plans."""
    found: set[str] = set()
    for path in (REPO / "agent").rglob("*.py"):
        if "lab" in path.relative_to(REPO / "agent").parts:
            continue  # the lab writes inventories; it reads none
        for node in ast.walk(ast.parse(path.read_text())):
            target = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr == "get" and node.args:
                    target, arg = node.func.value, node.args[0]
            elif isinstance(node, ast.Subscript):
                target, arg = node.value, node.slice
            if target is None or not isinstance(arg, ast.Constant):
                continue
            owner = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if owner in ("vars", "host_vars", "variables") and isinstance(arg.value, str):
                found.add(arg.value)
    for plan in (REPO / "plans").glob("*.yml"):
        found |= set(re.findall(r"\{\{ *\(?([a-z_]+)", plan.read_text()))
    return found


def test_every_variable_the_code_reads_is_documented() -> None:
    documented = {
        name
        for _, variables in docs_data.variable_groups()
        for v in variables
        for name in (v.name, *v.aliases)
    }
    missing = sorted(_names_read_by_the_code() - documented)
    assert not missing, f"add them to agent/jobs/docs_data.py: {missing}; {REGENERATE}"


def test_every_exit_code_the_code_declares_is_documented() -> None:
    declared: set[int] = set()
    for path in (REPO / "agent").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    name = getattr(target, "id", "")
                    if (name.startswith("EXIT_") or name == "exit_code") and isinstance(
                        node.value.value, int
                    ):
                        declared.add(node.value.value)
    assert declared <= {code for code, _ in docs_data.exit_codes()}


def test_doc_files_names_the_certificate_layout_and_the_transaction_lock(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["doc", "files"]) == 0
    out = capsys.readouterr().out
    for path in (
        "/etc/ssl/origin-agent/NAME/VERSION/privkey.pem` | 0600",
        "/etc/ssl/origin-agent/NAME/current` | link",
        "/etc/ssl/origin-agent/NAME/site-files",
        "/var/lib/origin-agent/txn/NAME.lock",
        "/etc/nginx/sites-available/NAME.conf",
    ):
        assert path in out


def test_doc_without_a_topic_lists_every_module_and_issuer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["doc"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line[:2] == "  "}
    assert listed == set(modules.names()) | set(ISSUERS)


def test_an_unknown_topic_is_one_usage_line_with_a_suggestion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["doc", "tls_orign"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'tls_origin'?" in err


def test_write_with_a_topic_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doc", "acme", "--write", str(tmp_path)]) == 2
    assert "give no TOPIC" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_the_command_line_regenerates_docs_as_checked_in(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent", "doc", "--write", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for name in docs.PAGES:
        assert (tmp_path / name).read_text() == (REPO / "docs" / name).read_text(), REGENERATE
