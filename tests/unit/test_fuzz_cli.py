"""Hypothesis through the CLI: every option of every command, inventory addresses (scope ids,
IDN, controls), host patterns, secrets in the wrong field and IDN names. The property: the
input is taken, or refused in one line with the right exit code; no traceback, no terminal
control or planted secret in what is printed, nothing started or written."""

from __future__ import annotations

import argparse
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.cli import COMMANDS, build_parser
from agent.errors import AgentError, ConnectError
from agent.inventory import Host, connection_spec
from agent.modules.tls import services
from agent.modules.tls.origin import TlsOriginModule
from agent.validate import check_hostname, ip_address
from tests import hostile
from tests.hostile import PLANTED, RAW_CONTROLS, run_cli

pytestmark = pytest.mark.hostile

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
NASTY = st.sampled_from(
    [
        "",
        "-",
        "--",
        "nan",
        "inf",
        "-1",
        "0",
        "1e308",
        "9" * 5000,
        "0x" + "f" * 50,
        "../..",
        "/",
        "/dev/full",
        "a\nb",
        "\x1b[2J",
        "\u202e",
        "\x9b",
        "$(id)",
        "`id`",
        ";id",
        "%n",
        "{{ 7*7 }}",
        "@/etc/shadow",
        "*",
        "[",
        "]",
        ":",
        ",",
        "all[0:10^23]",
        "~(a+)+$",
        "bücher.example",
    ]
)
VALUES = NASTY | st.text(max_size=30)


def _options() -> list[tuple[tuple[str, ...], str]]:
    """(argv prefix, option) for every option that takes a value, in every (sub)command; the
    prefix fills positionals with a plain word."""
    found: list[tuple[tuple[str, ...], str]] = []

    def walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        words = list(prefix)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*prefix, name))
                return
            if not action.option_strings and action.nargs != 0:
                words.append("x")
        for action in parser._actions:
            if action.option_strings and action.nargs != 0 and action.dest != "help":
                found.append((tuple(words), action.option_strings[-1]))

    for command in COMMANDS:
        top = build_parser(command)
        sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
        walk(sub.choices[command], (command,))
    return found


OPTIONS = _options()


@FUZZ
@given(option=st.sampled_from(OPTIONS), value=VALUES)
def test_any_value_of_any_option_parses_or_is_one_usage_line(
    option: tuple[tuple[str, ...], str], value: str
) -> None:
    prefix, flag = option
    argv = [*prefix, flag, value]
    err = io.StringIO()
    code = 0
    with redirect_stderr(err):
        try:
            build_parser(prefix[0]).parse_args(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    outcome = hostile.Outcome(code, "", err.getvalue(), [], [])
    hostile.note(" ".join(argv), outcome)
    assert code in (0, 2)
    if code == 2:
        assert outcome.lines[-1].startswith("origin-agent") and "error:" in outcome.lines[-1]
    assert not RAW_CONTROLS & set(outcome.err)


@contextmanager
def _no_connections() -> Iterator[list[str]]:
    """transport.connect refuses at once and records the address it was given."""
    from agent import transport

    reached: list[str] = []
    real = transport.connect

    def refuse(spec: Any, **_: Any) -> Any:
        reached.append(spec.address)
        raise ConnectError("refused by the test", host=spec.name)

    transport.connect = refuse  # type: ignore[assignment]
    try:
        yield reached
    finally:
        transport.connect = real  # type: ignore[assignment]


ADDRESSES = st.one_of(
    st.builds(
        lambda base, scope: f"{base}%{scope}",
        st.sampled_from(["::1", "fe80::1", "::ffff:127.0.0.1"]),
        st.text(max_size=15) | NASTY,
    ),
    st.text(max_size=40),
    NASTY,
)


def _files(tmp: Path, inventory: str) -> tuple[str, str]:
    inv, plan = tmp / "inv.yml", tmp / "plan.yml"
    inv.write_text(inventory)
    plan.write_text("- hosts: all\n  tasks:\n    - command: echo hi\n")
    return str(inv), str(plan)


def _judge(outcome: hostile.Outcome, codes: tuple[int, ...]) -> None:
    printed = outcome.out + outcome.err
    assert outcome.code in codes, printed[-500:]
    assert "Traceback" not in printed and "internal error" not in printed
    if outcome.code in (1, 2):
        assert len(outcome.lines) == 1 or outcome.code == 2, outcome.err
    assert not RAW_CONTROLS & set(printed)
    assert outcome.spawned == [] and outcome.written == []


def _plain(address: str) -> None:
    """An IP literal (a scope id only of letters, digits, '_', '.', '-') or a host name (of
    letters, digits, '_', '.', '-': '_' is found in internal names)."""
    if ip_address(address) != address:
        assert re.fullmatch(r"[A-Za-z0-9_.-]{1,253}", address) and ".." not in address
        assert not address.rstrip(".").rsplit(".", 1)[-1].isdigit()
    assert not set(address) & set("$`;|&<>()'\" \n\\")


@FUZZ
@given(address=ADDRESSES)
def test_an_inventory_address_is_refused_in_one_line_or_reaches_ssh_plain(
    tmp_path_factory: pytest.TempPathFactory, address: str
) -> None:
    tmp = tmp_path_factory.mktemp("addr")
    inv, plan = _files(
        tmp, "all:\n  hosts:\n    web1: {ansible_host: " + json.dumps(address) + "}\n"
    )
    with _no_connections() as reached:
        outcome = run_cli(["run", plan, "-i", inv, "--check"])
    _judge(outcome, (1, 3))
    for seen in reached:  # what reaches SSH (and ssh_config's Match exec) is plain
        _plain(seen)


@FUZZ
@given(address=ADDRESSES)
def test_an_extra_var_address_is_refused_in_one_line_or_reaches_ssh_plain(
    tmp_path_factory: pytest.TempPathFactory, address: str
) -> None:
    tmp = tmp_path_factory.mktemp("extra")
    inv, plan = _files(tmp, "all:\n  hosts:\n    web1: {ansible_host: 127.77.0.1}\n")
    with _no_connections() as reached:
        outcome = run_cli(["run", plan, "-i", inv, "--check", "-e", f"ansible_host={address}"])
    _judge(outcome, (1, 2, 3))
    for seen in reached:
        _plain(seen)


PATTERN_WORDS = st.sampled_from(
    ["web1", "db1", "db", "all", "*", "!", "&", ":", ",", "[", "]", "0", "-1", "~", "(a+)+$", "web"]
)


@FUZZ
@given(pattern=st.lists(PATTERN_WORDS, max_size=5).map("".join) | st.text(max_size=20))
def test_a_limit_selects_a_subset_or_is_one_line(
    tmp_path_factory: pytest.TempPathFactory, pattern: str
) -> None:
    tmp = tmp_path_factory.mktemp("limit")
    inv, plan = _files(tmp, hostile.THREE)
    with _no_connections() as reached:
        outcome = run_cli(["run", plan, "-i", inv, "--check", "--limit", pattern])
    _judge(outcome, (1, 2, 3))
    assert len(reached) <= 3


SECRET_FIELDS = {
    "token_env": {"backend": "cloudflare"},
    "token_file": {"backend": "cloudflare"},
    "dns_token_env": {"backend": "acme", "directory": "https://acme.example/dir"},
    "eab_hmac_key_env": {
        "backend": "acme",
        "directory": "https://acme.example/dir",
        "eab_kid": "k",
    },
    "auth_key_file": {"backend": "cfssl", "url": "https://ca.example.com"},
}
SECRETS = st.sampled_from(PLANTED) | st.text(min_size=12, max_size=40).filter(
    lambda s: s.strip() == s and "\n" not in s
)


@FUZZ
@given(field=st.sampled_from(sorted(SECRET_FIELDS)), secret=SECRETS)
def test_a_secret_pasted_into_a_name_field_is_never_shown(field: str, secret: str) -> None:
    config = {**SECRET_FIELDS[field], field: secret}
    try:
        services.issuer(config, where="web1")
    except AgentError as err:
        assert secret not in str(err) and "\n" not in str(err)


@FUZZ
@given(field=st.sampled_from(["password_env", "become_password_env"]), secret=SECRETS)
def test_a_password_pasted_into_an_env_field_is_never_shown(field: str, secret: str) -> None:
    try:
        connection_spec(Host("web1", {"ansible_host": "127.0.0.1", field: secret}))
    except AgentError as err:
        assert secret not in str(err) and "\n" not in str(err)


@FUZZ
@given(names=st.lists(st.text(max_size=30) | NASTY, min_size=1, max_size=3))
def test_tls_names_are_plain_dns_names_or_one_line(names: list[str]) -> None:
    variables = {"tls_names": names, "issuer": {"backend": "selfsigned"}}
    try:
        TlsOriginModule.check_for_host({}, variables, "web1")
    except AgentError as err:
        assert "\n" not in str(err) and not RAW_CONTROLS & set(str(err))
        return
    for name in names:  # accepted: ASCII DNS names only (an IDN must be given as punycode)
        assert check_hostname(name) == name and name.isascii()
