"""status and pins probe only what run would accept: validated addresses, ports and names;
nothing an inventory says reaches a Host header or a terminal unescaped; the debug log never
follows a planted link."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent import cli
from agent.errors import AgentError
from agent.inventory import Host
from agent.jobs import pins
from agent.jobs.status import StatusRow, collect
from agent.jobs.status_render import table
from agent.jobs.targets import ProbeTarget, probe_target
from agent.pki.probe import probe_http


def target(**variables: Any) -> ProbeTarget:
    return probe_target(Host("web1", {"ansible_host": "127.0.0.1", **variables}))


def test_defaults_and_a_valid_host() -> None:
    assert target() == ProbeTarget("127.0.0.1", 443, 80, ("web1",))
    got = target(tls_names=["A.example.com", "a.example.com", "bücher.example"], https_port="8443")
    assert got.names == ("a.example.com", "xn--bcher-kva.example") and got.https_port == 8443


@pytest.mark.parametrize(
    ("variables", "said"),
    [
        ({"https_port": "abc"}, "web1: https_port: invalid port 'abc'"),
        ({"http_port": [1]}, "web1: http_port: invalid port [1]"),
        ({"https_port": 99999}, "web1: https_port: invalid port 99999"),
        ({"https_port": 10**5000}, "web1: https_port: invalid port <an integer of about"),
        ({"tls_names": "a.example"}, "web1: tls_names: expected a list of names, got str"),
        ({"tls_names": 5}, "web1: tls_names: expected a list of names, got int"),
        ({"tls_names": ["a.example.com\r\nX-Injected: yes"]}, "web1: tls_names: invalid"),
        ({"tls_names": ["a..b"]}, "web1: tls_names: invalid hostname"),
        ({"tls_names": ["x" * 70 + ".example"]}, "web1: tls_names: invalid hostname"),
        ({"tls_names": ["bü" + "x" * 70 + ".example"]}, "web1: tls_names: 'bü"),
        ({"ansible_host": "bad;host"}, "web1: ansible_host 'bad;host': not a host name"),
        ({"listen_address": "::1%lo]:8080;\n#"}, "web1: listen_address: invalid address"),
    ],
)
def test_a_bad_value_is_one_line_naming_host_and_variable(
    variables: dict[str, Any], said: str
) -> None:
    with pytest.raises(AgentError) as exc:
        target(**variables)
    assert str(exc.value).startswith(said) and "\n" not in str(exc.value)


def test_status_checks_every_host_before_probing_any() -> None:
    hosts = [Host("ok", {"ansible_host": "127.0.0.1"}), Host("bad", {"https_port": "abc"})]
    with pytest.raises(AgentError, match="bad: https_port"):
        collect(hosts, now=datetime.now(UTC), use_state=False, timeout=0.1)


def test_pins_reports_a_bad_port_in_the_row() -> None:
    row = pins.host_pins(Host("web1", {"ansible_host": "127.0.0.1", "https_port": "abc"}))
    assert "https_port: invalid port 'abc'" in row.current_error


def test_the_http_probe_never_sends_a_host_value_with_cr_lf() -> None:
    answer = probe_http("127.0.0.1", 9, "a.example.com\r\nCookie: x", timeout=0.1)
    assert answer.status is None and "request not sent" in answer.error


def test_escape_sequences_from_a_served_certificate_are_escaped_in_the_table() -> None:
    row = StatusRow(
        host="h1\u202e",
        name="a.example.com",
        address="127.0.0.1",
        port=443,
        mode="full",
        issuer="CN=X\x1b[2J\x1b[31mSTRICT OK\x1b[0m\x9b1m",
    )
    text = table([row])
    assert "\x1b" not in text and "\x9b" not in text and "\u202e" not in text
    assert "X\\x1b[2J\\x1b[31mSTRICT OK" in text and "h1\\u202e" in text


def test_the_debug_log_never_follows_a_planted_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / f"origin-agent-debug-{os.getpid()}.log").symlink_to(victim)
    monkeypatch.setenv("ORIGIN_AGENT_LOG_DIR", str(logs))
    path = cli._write_debug_log("Traceback ...\n")
    assert victim.read_text() == "precious\n"
    info = os.lstat(path)
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert Path(path).read_text() == "Traceback ...\n"
