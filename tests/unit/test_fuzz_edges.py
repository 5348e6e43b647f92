"""Properties over hostile text at the edges: addresses with scope ids, host patterns, URLs a
secret is sent to. Each input is accepted in a safe form or refused with one line of the right
kind; nothing else escapes, nothing widens."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agent.errors import AgentError, ValidationError
from agent.inventory import Host, Inventory
from agent.inventory.model import Group
from agent.inventory.patterns import PatternError, evaluate
from agent.validate import check_address, check_secret_url, is_loopback, terminal_safe

pytestmark = pytest.mark.hostile

PIECES = st.sampled_from(
    ["::1", "fe80::1", "127.0.0.1", "%", "lo", "eth0", "$(id)", "`id`", ";", "\n", "]", "[",
     ":", ",", "~", "!", "&", "*", "(a+)+$", "web", "db1", " ", "\x1b", "\u202e", "{", "}"]
)  # fmt: skip
TEXT = st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=8).map("".join)
NAMES = ["web1", "web2", "db1", "a" * 30 + "X"]
INV = Inventory(
    hosts={n: Host(name=n, vars={}, groups=("all",)) for n in NAMES},
    groups={"all": Group(name="all", hosts=tuple(NAMES))},
)
SAFE_ADDRESS = re.compile(r"^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]{1,15})?$")


@settings(max_examples=400, deadline=None)
@given(TEXT)
@example("::1%x$(id>pwned)")
@example("fe80::1%lo\nListen 1")
def test_an_address_is_a_plain_literal_or_one_line_error(text: str) -> None:
    try:
        address = check_address(text, where="h1: ansible_host")
    except ValidationError as err:
        assert "\n" not in str(err) and str(err).startswith("h1: ansible_host: ")
        return
    assert SAFE_ADDRESS.fullmatch(address)


@settings(max_examples=400, deadline=None)
@given(TEXT)
@example("[")
@example(":::")
@example("~(a+)+$")
def test_a_pattern_selects_a_subset_or_is_one_line_error(text: str) -> None:
    try:
        selected = evaluate(INV, text, what="--limit")
    except PatternError as err:
        assert err.exit_code == 2 and "\n" not in str(err)
        return
    except AgentError as err:
        assert err.exit_code == 1 and "\n" not in str(err)
        return
    assert set(selected) <= set(NAMES)
    if set(selected) == set(NAMES):  # the whole fleet only when the text names it
        assert any(t in text for t in ("all", "*", "web", "db", "a", "!", "~", "?"))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["http://", "https://", "file://", "", "gopher://"]), TEXT)
def test_a_secret_url_is_https_or_loopback_http(scheme: str, rest: str) -> None:
    try:
        url = check_secret_url(scheme + rest, where="issuer x: url")
    except ValidationError as err:
        assert "\n" not in str(err)
        return
    assert url.startswith("https://") or is_loopback(urlsplit(url).hostname or "")
    assert not any(ord(c) < 0x21 for c in url)


@given(st.text(max_size=40))
def test_terminal_text_has_no_control_or_bidi_characters(text: str) -> None:
    shown = terminal_safe(text)
    assert all(c.isprintable() and not 0x202A <= ord(c) <= 0x202E for c in shown)
