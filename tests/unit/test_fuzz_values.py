"""Properties: hostnames, paths, ports and names bound for a shell or a config file are either
rejected with one line (a ValidationError) or reach the rendered config or script without
adding a line, a statement, a block or a command: nothing unvalidated gets through."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agent.errors import AgentError, ValidationError
from agent.modules.tls import txn
from agent.servers.base import adapter_for
from agent.servers.site import SiteSpec
from agent.transport.changes import SwapSymlink, WriteFile
from agent.transport.quote import join
from agent.validate import check_hostname, check_path, check_port

pytestmark = pytest.mark.hostile

HOSTILE = [
    "\n",
    "\r",
    ";",
    "{",
    "}",
    "'",
    '"',
    "`",
    "$",
    "#",
    "<",
    ">",
    "\\",
    " ",
    "\t",
    "&",
    "|",
    "*",
    "\x00",
    "..",
    "%",
    "(",
    ")",
]
LABELS = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
GOOD_HOSTS = st.lists(LABELS, min_size=1, max_size=4).map(".".join)


@st.composite
def tainted(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    """A valid-looking value with hostile characters spliced in, or arbitrary text."""
    if draw(st.booleans()):
        return draw(st.text(max_size=40))
    value = draw(base)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(value)))
        value = value[:at] + draw(st.sampled_from(HOSTILE)) + value[at:]
    return value


def plain_paths(paths: list[str]) -> dict[str, str]:
    """Each distinct path to a plain one, keeping which paths share a directory."""
    dirs: dict[str, str] = {}
    out: dict[str, str] = {}
    for path in paths:
        parent = path.rsplit("/", 1)[0]
        dirs.setdefault(parent, f"/d{len(dirs)}" if parent else "")
        out.setdefault(path, f"{dirs[parent]}/p{len(out)}")
    return out


HOSTS = GOOD_HOSTS | tainted(GOOD_HOSTS)
PATHS = st.lists(LABELS, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p))
ANY_PATHS = PATHS | tainted(PATHS)
PORTS = st.integers(-5, 70000) | st.text(max_size=6) | st.booleans() | st.none() | st.floats()


def one_line(err: AgentError) -> None:
    text = str(err)
    assert text and "\n" not in text and "\r" not in text, text


def shape(text: str) -> tuple[int, ...]:
    """What an injection would change: lines, statements, blocks, quotes, substitutions."""
    return tuple(text.count(c) for c in ("\n", ";", "{", "}", "<", ">", "'", '"', "`", "$(", "#"))


@settings(max_examples=400, deadline=None)
@given(HOSTS)
@example("a.example\n")  # a regex `$` lets a trailing newline through
def test_an_accepted_hostname_is_plain(value: str) -> None:
    try:
        check_hostname(value, where="test")
    except ValidationError as err:
        one_line(err)
        return
    assert not any(c in value for c in HOSTILE if c not in ("*",)), value


@settings(max_examples=400, deadline=None)
@given(ANY_PATHS)
@example("/etc/x\n")
def test_an_accepted_path_is_absolute_plain_and_never_climbs(value: str) -> None:
    try:
        check_path(value, where="test")
    except ValidationError as err:
        one_line(err)
        return
    assert value.startswith("/") and ".." not in value.split("/")
    assert shlex.quote(value) == value  # nothing a shell would read specially


@settings(max_examples=300, deadline=None)
@given(PORTS)
@example(float("inf"))
def test_a_port_is_an_int_in_range_or_one_line_rejection(value: object) -> None:
    try:
        port = check_port(value, where="test")
    except ValidationError as err:
        one_line(err)
        return
    assert isinstance(port, int) and 1 <= port <= 65535


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=6))
def test_join_gives_the_shell_exactly_the_argv(argv: list[str]) -> None:
    try:
        text = join(argv)
    except ValidationError as err:
        one_line(err)
        assert any("\x00" in a for a in argv)
        return
    assert shlex.split(text) == argv


@settings(max_examples=300, deadline=None)
@given(
    name=HOSTS,
    names=st.lists(HOSTS, min_size=1, max_size=3),
    listen=st.none()
    | st.sampled_from(["127.0.1.5", "::1", "0.0.0.0"])
    | tainted(st.just("127.0.0.1")),
    https=PORTS,
    root=ANY_PATHS,
    server=st.sampled_from(["nginx", "apache"]),
)
@example(  # a name given twice is one name (the config lists it once)
    name="0", names=["a.example", "a.example"], listen=None, https=1, root="/0", server="apache"
)
def test_a_site_is_rendered_only_from_validated_values(
    name: str, names: list[str], listen: str | None, https: object, root: str, server: str
) -> None:
    try:
        site = SiteSpec(
            name=name,
            server_names=tuple(names),
            listen_address=listen,
            https_port=https,  # type: ignore[arg-type]
            document_root=root,
            where="fuzz",
        )
    except ValidationError as err:
        one_line(err)
        return
    adapter = adapter_for(server)
    clean = SiteSpec(
        name="a.example",
        server_names=tuple(f"n{i}.example" for i in range(len(site.server_names))),
        listen_address="127.0.0.1" if site.listen_address else None,
        https_port=443,
        document_root="/srv/x",
    )
    assert shape(adapter.render_site(site)) == shape(adapter.render_site(clean))
    assert shape(adapter.render_policy(site)) == shape(adapter.render_policy(clean))


@settings(max_examples=300, deadline=None)
@given(
    name=tainted(LABELS) | LABELS,
    paths=st.lists(ANY_PATHS, max_size=3),
    links=st.lists(st.tuples(ANY_PATHS, LABELS | ANY_PATHS | tainted(LABELS)), max_size=2),
    version=st.none() | st.just("20260101T000000Z-abcd") | st.text(max_size=25),
    keep=st.integers(-2, 200),
)
@example(name="site\n", paths=[], links=[], version=None, keep=3)
def test_a_transaction_script_carries_only_validated_values(
    name: str, paths: list[str], links: list[tuple[str, str]], version: str | None, keep: int
) -> None:
    server = txn.server_commands(
        ["nginx", "-t"], ["nginx", "-s", "reload"], ["x"], ["nginx"], ["x"]
    )
    try:
        t = txn.Transaction(
            name=name,
            server=server,
            version=version,
            files=tuple(WriteFile(p, b"x") for p in paths),
            links=tuple(SwapSymlink(p, target) for p, target in links),
            keep_versions=keep,
        )
        script = txn.apply_script(t)
        rollback = txn.rollback_script(name, server)
    except ValidationError as err:
        one_line(err)
        return
    plain = plain_paths([*paths, *(p for p, _ in links)])
    base = txn.Transaction(
        name="site",
        server=server,
        version="20260101T000000Z-abcd" if version else None,
        files=tuple(WriteFile(plain[p], b"x") for p in paths),
        links=tuple(
            SwapSymlink(plain[p], f"/t{i}" if target.startswith("/") else "t")
            for i, (p, target) in enumerate(links)
        ),
        keep_versions=keep,
    )
    assert shape(script) == shape(txn.apply_script(base))
    assert shape(rollback) == shape(txn.rollback_script("site", server))


@settings(max_examples=200, deadline=None)
@given(argv=st.lists(st.text(max_size=15), min_size=1, max_size=3))
def test_server_commands_reach_the_script_as_quoted_words(argv: list[str]) -> None:
    server = txn.server_commands(argv, argv, argv, argv, argv)
    try:
        script = txn.apply_script(txn.Transaction(name="site", server=server))
    except ValidationError as err:
        one_line(err)
        assert any("\x00" in a for a in argv)
        return
    assert f"server_test() {{ {join(argv)} 9>&-; }}" in script
