"""Hostile and careless input: the CLI run in-process on an input, what came out of it, and the
session's tally (inputs tried, tracebacks seen, planted secrets found in what was printed or
written).

The tally is written to tests/hostile-last-run.txt at the end of a pytest session (see
tests/unit/conftest.py), so the README quotes figures from one run. A "traceback" is any
exception other than :class:`~agent.errors.AgentError` reaching the CLI's top level or a fuzz
property (the CLI turns it into "internal error"), or a traceback printed or logged.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Values planted where a careless user puts a secret (an environment variable the inventory
# names, a field that wants a name, a file): none may ever be printed or written.
PLANTED = (
    "Zq8sK2v-PlantedCloudflareToken-0123456789",
    "hunter2-Planted-Passw0rd",
    "deadbeefPLANTEDhmac0123456789abcdef",
    "$6$PLANTEDsalt$PLANTEDshadowhash",
)
# What escapes a terminal or a line when printed raw: ESC and the other C0 controls but TAB and
# LF, DEL, the C1 controls and the bidi overrides.
RAW_CONTROLS = frozenset(
    [chr(c) for c in range(32) if c not in (9, 10)]
    + [chr(0x7F)]
    + [chr(c) for c in range(0x80, 0xA0)]
    + list("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


@dataclass
class Tally:
    """What one pytest session tried and saw."""

    hypothesis_examples: int = 0
    fixed_cases: int = 0
    cli_runs: int = 0
    tracebacks: int = 0
    secrets_found: int = 0
    where: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> int:
        return self.hypothesis_examples + self.fixed_cases

    def traceback_seen(self, what: str) -> None:
        self.tracebacks += 1
        self.where.append(f"traceback: {what[:160]}")

    def secret_seen(self, what: str) -> None:
        self.secrets_found += 1
        self.where.append(f"secret: {what[:160]}")


TALLY = Tally()


def planted_in(text: str) -> bool:
    return any(secret in text for secret in PLANTED)


@dataclass(frozen=True)
class Outcome:
    """What one CLI run did: exit code, stdout, stderr (with what was logged), the commands it
    started and the files it opened for writing."""

    code: int
    out: str
    err: str
    spawned: list[str]
    written: list[str]

    @property
    def lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


class _Recorder:
    """An audit hook (added once) that records, while a CLI run is watched, every process
    started and every file opened for writing."""

    def __init__(self) -> None:
        self.on = False
        self.spawned: list[str] = []
        self.written: list[str] = []
        self.local = threading.local()

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.on or getattr(self.local, "busy", False):
            return
        self.local.busy = True
        try:
            self._record(event, args)
        finally:
            self.local.busy = False

    def _record(self, event: str, args: tuple[Any, ...]) -> None:
        if event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.spawn"):
            self.spawned.append(" ".join(os.fsdecode(a) for a in args[1])[:200])
        elif event == "os.system":
            self.spawned.append(os.fsdecode(args[0])[:200])
        elif event == "open" and isinstance(args[2], int) and args[2] & WRITE_FLAGS:
            path, flags = args[0], args[2]
            if isinstance(path, (str, bytes)) and os.fsdecode(path) != os.devnull:
                # a new file, or an existing one truncated or written (O_EXCL fails on it)
                if not os.path.lexists(path) or not flags & os.O_EXCL:
                    self.written.append(os.fsdecode(path))
        elif event in ("os.mkdir", "sqlite3.connect"):
            path = args[0]
            if isinstance(path, (str, bytes, os.PathLike)) and os.fspath(path) != ":memory:":
                if not os.path.lexists(path):  # hook runs before: only what is made
                    self.written.append(os.fsdecode(os.fspath(path)))


_RECORDER = _Recorder()
sys.addaudithook(_RECORDER)


@contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _main(argv: list[str]) -> int:
    from agent.cli import main

    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


def run_cli(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Outcome:
    """Run ``origin-agent ARGV`` in this process and tally what came out."""
    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    root = logging.getLogger()
    root.addHandler(handler)
    _RECORDER.spawned, _RECORDER.written = [], []
    _RECORDER.on = True
    try:
        with _environ(env or {}), redirect_stdout(out), redirect_stderr(err):
            code = _main(list(argv))
    except Exception:  # noqa: BLE001 - that is what is being counted
        code = -1
        err.write(traceback.format_exc())
    finally:
        _RECORDER.on = False
        root.removeHandler(handler)
    outcome = Outcome(code, out.getvalue(), err.getvalue(), _RECORDER.spawned, _RECORDER.written)
    note(" ".join(argv), outcome)
    return outcome


def note(what: str, outcome: Outcome) -> None:
    """Tally one CLI run: a traceback or "internal error", a planted secret printed or written."""
    TALLY.cli_runs += 1
    text = outcome.out + outcome.err
    if code_is_internal(outcome.code) or "Traceback" in text or "internal error" in text:
        TALLY.traceback_seen(what)
    if planted_in(text) or any(planted_in(_read(path)) for path in set(outcome.written)):
        TALLY.secret_seen(what)


def code_is_internal(code: int) -> bool:
    return code == -1


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(1 << 20).decode("utf-8", "replace")
    except OSError:
        return ""


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> None:
    """Write ``files`` (relative path -> text or bytes) under ``root``."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def summary(command: str, date: str) -> str:
    """The tally as the text of tests/hostile-last-run.txt."""
    lines = [
        f"date: {date}",
        f"command: {command}",
        f"inputs tried: {TALLY.inputs}",
        f"  hypothesis examples: {TALLY.hypothesis_examples}",
        f"  fixed cases: {TALLY.fixed_cases}",
        f"  CLI runs (within both): {TALLY.cli_runs}",
        f"tracebacks: {TALLY.tracebacks}",
        f"planted secrets found in output: {TALLY.secrets_found}",
        *TALLY.where[:50],
    ]
    return "\n".join(lines) + "\n"


# -- the fixed corpus: every input of the hostile-input report ------------------------------

INV = "all:\n  hosts:\n    web1: {ansible_host: 127.77.0.1, ansible_port: 1}\n"
THREE = (
    "all:\n  hosts:\n    web1: {ansible_host: 127.77.0.1, ansible_port: 1}\n"
    "  vars: {issuer: {backend: selfsigned}}\n"
    "  children:\n    db:\n      hosts:\n"
    "        db1: {ansible_host: 127.77.0.1, ansible_port: 1}\n"
    "        db2: {ansible_host: 127.77.0.1, ansible_port: 1}\n"
)
PLAN = "- hosts: all\n  tasks:\n    - command: echo hi\n"
SHADOW = f"root:{PLANTED[3]}:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\n"
TLS_HOST = (
    "all:\n  hosts:\n    web1:\n      ansible_host: 127.77.0.1\n      ansible_port: 1\n"
    "      tls_names: [a.example.com]\n      issuer: {backend: selfsigned}\n"
)


def _with_var(line: str) -> str:
    """The TLS host with one more host variable (a YAML ``key: value`` line)."""
    return TLS_HOST + f"      {line}\n"


def _issuer(mapping: str) -> str:
    return TLS_HOST.replace("{backend: selfsigned}", mapping)


def _plan_with(command: str) -> str:
    return "- hosts: all\n  tasks:\n    - command: " + command + "\n"


@dataclass(frozen=True)
class Case:
    """One input: files under a temporary directory ``{d}``, the argv (``{d}`` replaced), the
    exit code it must give and a word its one line of error must hold."""

    id: str
    argv: tuple[str, ...]
    code: int
    says: str = ""
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    one_line: bool = True
    special: str = ""  # "fifo" or "loop": group_vars/all under {d}/inv is a FIFO or a symlink loop


def _run(inv: str, *more: str) -> tuple[str, ...]:
    return ("run", "{d}/plan.yml", "-i", "{d}/" + inv, "--check", *more)


def _case(id: str, inv_text: str, argv: tuple[str, ...], code: int, says: str = "") -> Case:
    suffix = ".ini" if not inv_text.lstrip().startswith(("all:", "{", "-")) else ".yml"
    files = {"inv" + suffix: inv_text, "plan.yml": PLAN}
    return Case(id, tuple(a.replace("INV", "inv" + suffix) for a in argv), code, says, files)


def _inv_cases() -> list[Case]:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    bomb_inv = "all:\n  vars:\n" + "".join("    " + line + "\n" for line in bomb.splitlines())
    bomb_inv += "  hosts: {h1: {ansible_host: 127.0.0.1}}\n"
    return [
        Case(
            "yaml-malformed", ("inventory", "-i", "{d}/i.yml", "--list"), 1, "", {"i.yml": "all: ["}
        ),
        Case("yaml-empty", ("inventory", "-i", "{d}/i.yml", "--list"), 1, "empty", {"i.yml": ""}),
        Case("ini-empty", ("inventory", "-i", "{d}/i.ini", "--list"), 1, "", {"i.ini": ""}),
        Case(
            "ini-comments-only",
            ("inventory", "-i", "{d}/i.ini", "--list"),
            1,
            "",
            {"i.ini": "# x\n"},
        ),
        Case("dir-empty", ("inventory", "-i", "{d}/inv", "--list"), 1, "", {"inv/.keep": ""}),
        Case("dev-null", ("inventory", "-i", "/dev/null", "--list"), 1),
        Case(
            "not-utf8",
            ("inventory", "-i", "{d}/i.yml", "--list"),
            1,
            "",
            {"i.yml": b"all:\xff\xfe"},
        ),
        Case(
            "yaml-duplicate-keys",
            ("inventory", "-i", "{d}/i.yml", "--list"),
            1,
            "duplicate",
            {"i.yml": "all:\n  hosts: {a: {}}\n  hosts: {b: {}}\n"},
        ),
        # every problem of a file is listed, one line each
        Case(
            "alias-bomb",
            ("inventory", "-i", "{d}/i.yml", "--list"),
            1,
            "",
            {"i.yml": bomb_inv},
            one_line=False,
        ),
        Case(
            "recursive-alias",
            ("inventory", "-i", "{d}/i.yml", "--list"),
            1,
            "",
            {"i.yml": "all: &a\n  hosts: {h: {x: *a}}\n"},
        ),
        Case(
            "deep-nesting",
            ("inventory", "-i", "{d}/i.yml", "--list"),
            1,
            "",
            {"i.yml": "all: {vars: {x: " + "[" * 5000 + "]" * 5000 + "}}\n"},
        ),
        Case(
            "python-tag",
            ("inventory", "-i", "{d}/i.yml", "--list"),
            1,
            "",
            {"i.yml": "all:\n  vars: {x: !!python/object/apply:os.system [id]}\n"},
        ),
        Case(
            "vault-tag",
            ("inventory", "-i", "{d}/i.yml", "--list"),
            1,
            "",
            {"i.yml": "all:\n  vars: {x: !vault |\n    $ANSIBLE_VAULT;1.1;AES256\n    6134}\n"},
        ),
        Case(
            "ini-duplicate-group-var",
            ("inventory", "-i", "{d}/i.ini", "--list"),
            1,
            "set twice",
            {"i.ini": "[g]\nh\n[g:vars]\ny=1\ny=2\n"},
        ),
        Case(
            "ini-section-typo",
            ("inventory", "-i", "{d}/i.ini", "--list"),
            1,
            "unclosed section header",
            {"i.ini": "[web\nweb1\n"},
        ),
        Case(
            "ini-duplicate-var",
            ("inventory", "-i", "{d}/i.ini", "--list"),
            1,
            "",
            {"i.ini": "a x=1 x=2\n"},
        ),
        Case(
            "shadow-as-inventory",
            ("inventory", "-i", "{d}/shadow", "--list"),
            1,
            "",
            {"shadow": SHADOW},
            one_line=False,
        ),
        Case(
            "shadow-as-ini",
            ("inventory", "-i", "{d}/shadow.ini", "--list"),
            1,
            "",
            {"shadow.ini": "[" + SHADOW.splitlines()[0] + "]\nh\n"},
        ),
        Case(
            "symlink-loop-group-vars",
            ("inventory", "-i", "{d}/inv", "--list"),
            1,
            "",
            {"inv/hosts.yml": "all: {hosts: {h: {}}}\n"},
            special="loop",
        ),
        Case(
            "fifo-group-vars",
            ("inventory", "-i", "{d}/inv", "--list"),
            1,
            "",
            {"inv/hosts.yml": "all: {hosts: {h: {}}}\n"},
            special="fifo",
        ),
    ]


ADDRESSES = [
    "::1%x$(id>pwned)",
    "fe80::1%lo`id>pwned`",
    "::1%lo;id",
    "::1%lo\nid",
    "127.0.0.1;id",
    "-oProxyCommand=id",
    "a|b",
    "<script>",
    "../x",
    "a\x1b[2Jb",
    "a\u202eb",
    "a\x9bb",
]
PORTS = ["0", "65536", "-1", "1e3", "[22]", "0x" + "f" * 5000, "abc", "1.5", "true"]


def _host_cases() -> list[Case]:
    cases = []
    for n, address in enumerate(ADDRESSES):
        quoted = json_str(address)
        inv = "all:\n  hosts:\n    web1: {ansible_host: " + quoted + "}\n"
        cases.append(_case(f"ansible-host-{n}", inv, _run("INV"), 1))
        cases.append(_case(f"status-host-{n}", inv, ("status", "-i", "{d}/INV"), 1))
        name_inv = "all:\n  hosts:\n    " + quoted + ": {}\n"
        cases.append(_case(f"host-name-{n}", name_inv, _run("INV"), 1))
        cases.append(
            _case(f"extra-var-host-{n}", INV, _run("INV", "-e", f"ansible_host={address}"), 1)
        )
    cases.append(
        Case(
            "host-list-scope-id",
            ("run", "{d}/plan.yml", "-i", "::1%x$(id>pwned),", "--check"),
            1,
            "",
            {"plan.yml": PLAN},
        )
    )
    for n, port in enumerate(PORTS):
        inv = "all:\n  hosts:\n    web1: {ansible_host: 127.0.0.1, ansible_port: " + port + "}\n"
        cases.append(_case(f"ssh-port-{n}", inv, _run("INV"), 1))
        https = _with_var(f"https_port: {port}")
        cases.append(_case(f"status-https-port-{n}", https, ("status", "-i", "{d}/INV"), 1))
        cases.append(_case(f"pins-https-port-{n}", https, ("pins", "-i", "{d}/INV"), 1))
    cases.append(
        _case(
            "ini-big-port",
            "web1 ansible_host=127.0.0.1 ansible_port=0x" + "f" * 5000 + "\n",
            _run("INV"),
            1,
        )
    )
    return cases


def json_str(value: str) -> str:
    """``value`` as a YAML double-quoted scalar (JSON's escapes are YAML's)."""
    import json

    return json.dumps(value)


_VARS_FILES = "- hosts: all\n  vars_files: [{}]\n  tasks:\n    - command: echo\n"


def _plan_cases() -> list[Case]:
    def plan(id: str, text: str, code: int = 1, says: str = "", *files: tuple[str, str]) -> Case:
        return Case(
            id, _run("inv.yml"), code, says, {"inv.yml": INV, "plan.yml": text, **dict(files)}
        )

    return [
        Case(
            "plan-unknown-module",
            _run("inv.yml"),
            1,
            "",
            {"inv.yml": INV, "plan.yml": "- hosts: all\n  tasks:\n    - nosuch: {}\n"},
            one_line=False,
        ),
        plan("plan-not-a-list", "hosts: all\n"),
        plan("plan-empty", ""),
        plan("plan-multi-doc", PLAN + "---\n" + PLAN),
        plan("plan-bad-serial", "- hosts: all\n  serial: -1\n  tasks: []\n"),
        plan("plan-bad-fail-pct", "- hosts: all\n  max_fail_percentage: 300\n  tasks: []\n"),
        plan("plan-bad-when", "- hosts: all\n  tasks:\n    - command: echo\n      when: '{{'\n"),
        plan("plan-bad-loop", "- hosts: all\n  tasks:\n    - command: echo\n      loop: 5\n"),
        plan(
            "plan-bad-notify", "- hosts: all\n  tasks:\n    - command: echo\n      notify: nosuch\n"
        ),
        Case(
            "plan-vars-files-shadow",
            _run("inv.yml"),
            1,
            "",
            {"inv.yml": INV, "shadow": SHADOW, "plan.yml": _VARS_FILES.format("shadow")},
            one_line=False,  # one line per name, none shown
        ),
        plan(
            "plan-vars-files-traversal",
            "- hosts: all\n  vars_files: [../../../../etc/hostname]\n  tasks:\n    - command: echo\n",
        ),
        plan(
            "plan-vars-files-not-mapping",
            "- hosts: all\n  vars_files: [v.yml]\n  tasks:\n    - command: echo\n",
            1,
            "",
            ("v.yml", "[1, 2]\n"),
        ),
        plan(
            "plan-vars-files-bad-key",
            "- hosts: all\n  vars_files: [v.yml]\n  tasks:\n    - command: echo\n",
            1,
            "",
            ("v.yml", "'a b': 1\n"),
        ),
        plan(
            "plan-vars-files-int-key",
            "- hosts: all\n  vars_files: [v.yml]\n  tasks:\n    - command: echo\n",
            1,
            "",
            ("v.yml", "5: 1\n"),
        ),
        plan(
            "plan-play-vars-bad-key",
            "- hosts: all\n  vars: {'a-b': 1}\n  tasks:\n    - command: echo\n",
        ),
        plan(
            "plan-var-cycle",
            "- hosts: all\n  vars: {a: '{{ b }}', b: '{{ a }}'}\n  tasks:\n    - command: echo {{ a }}\n",
        ),
        plan("plan-package-null", "- hosts: all\n  tasks:\n    - package: {name: null}\n"),
        plan(
            "plan-no-host-matches",
            "- name: nobody\n  hosts: nosuch\n  tasks:\n    - command: echo\n",
            1,
            "nosuch",
        ),
    ]


TEMPLATES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__.os.system('id') }}",
    "{{ lookup('pipe', 'id') }}",
    "{% include '/etc/passwd' %}",
    "{{ '%999999999s' % 'x' }}",
    "{{ '{:>999999999}'.format('x') }}",
    "{{ 'x' | center(999999999) }}",
    "{{ 'ab' | indent(999999999) }}",
    "{% set s = 'x' * 1000000 %}{{ (s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s) | length }}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{% for a in range(10 ** 7) %}{% endfor %}",
    "{{ 'x' * 10 ** 10 }}",
    "{{ 9 ** 999 }}",
    "{{ x.__class__ | attr('__mro__') }}",
    "{{ '{0.__class__}'.format(1) }}",
]


def _template_cases() -> list[Case]:
    return [
        Case(
            f"jinja-{n}",
            _run("inv.yml"),
            1,
            "",
            {"inv.yml": INV, "plan.yml": _plan_with(json_str("echo " + t))},
        )
        for n, t in enumerate(TEMPLATES)
    ]


def _extra_var_cases() -> list[Case]:
    def ev(id: str, value: str, code: int = 1, *files: tuple[str, str | bytes]) -> Case:
        return Case(
            id,
            _run(
                "inv.yml", "-e", value.replace("@", "@{d}/", 1) if value.startswith("@") else value
            ),
            code,
            "",
            {"inv.yml": INV, "plan.yml": PLAN, **dict(files)},
        )

    return [
        ev("extra-no-equals", "a", 2),
        ev("extra-bad-name", "a-b=1", 2),
        ev("extra-not-mapping", "[1, 2]", 2),
        ev("extra-malformed", "{a: [", 1),
        ev("extra-python-tag", "{a: !!python/object/apply:os.system [id]}", 1),
        ev(
            "extra-alias-bomb",
            "{a: &a [x,x,x,x,x,x,x,x,x], b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a], c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b], d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c], e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d], f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e], g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]}",
            1,
        ),
        ev("extra-at-shadow", "@shadow", 2, ("shadow", SHADOW)),
        ev("extra-at-dir", "@sub", 1, ("sub/x", "")),
        ev("extra-at-missing", "@nosuch.yml", 1),
        ev("extra-at-not-utf8", "@bad.yml", 1, ("bad.yml", b"a: \xff\n")),
    ]


TLS_VARS = [
    "tls_names: ['*.*.example.com']",
    "tls_names: [bücher.example.com]",
    "tls_names: [" + "a" * 79 + ".example.com]",
    "tls_names: [127.0.0.1]",
    "tls_names: a.example.com",
    "tls_names: 5",
    "tls_names: {a: 1}",
    "tls_names: []",
    'tls_names: ["a.example.com\\r\\nX-Injected: yes"]',
    "tls_names: [a..b]",
    "tls_names: ['<img src=x>']",
    "site: ../../etc",
    "cert_root: /etc/../../x",
    "acme_webroot: /var/www/$(id)",
    'document_root: "/var/www/a\\nb"',
    "document_root: /var/www/a b",
    "server_paths: {site: '/etc/nginx/x;id'}",
    'listen_address: "::1%lo]:80;\\n    add_header X yes;\\n#"',
    'listen_address: "0.0.0.0;"',
    "https_port: 70000",
    "keep_versions: 1000",
    "validity_days: -5",
    "verify_timeout: -1",
    "tls_pins: x",
    "client_ca: /dev/null",
    "client_ca: client.pem",
    "web_server: lighttpd",
    "web_server: [nginx]",
    "renew_before_days: 1000000000000",
    "site_template: evil.j2",
]


HOST_VARS = ("tls_names", "listen_address", "web_server", "issuer", "upstream")
TLS_PLAN = (
    "- hosts: all\n  tasks:\n    - tls_origin:\n        names: [a.example.com]\n"
    "        issuer: {backend: selfsigned}\n"
)


def _tls_cases() -> list[Case]:
    files = {
        "client.pem": "not a certificate\n",
        "evil.j2": "{{ cycler.__init__.__globals__.os.popen('id').read() }}\n",
    }
    # host variables the rotation reads go through `rotate`; module arguments through a plan
    cases = [
        Case(
            f"tls-var-{n}",
            ("rotate", "-i", "{d}/inv.yml", "--check"),
            1,
            "",
            {"inv.yml": _with_var(var), **files},
        )
        for n, var in enumerate(TLS_VARS)
        if var.split(":")[0] in HOST_VARS
    ]
    cases += [
        Case(
            f"tls-arg-{var.split(':')[0]}-{n}",
            _run("inv.yml"),
            1,
            "",
            {
                "inv.yml": INV,
                "plan.yml": TLS_PLAN + f"        {var.replace('tls_pins', 'pins')}\n",
                **files,
            },
        )
        for n, var in enumerate(TLS_VARS)
        if var.split(":")[0] not in HOST_VARS
    ]
    cases += [
        Case(
            f"status-tls-var-{n}",
            ("status", "-i", "{d}/inv.yml", "--timeout", "1"),
            1,
            "",
            {"inv.yml": _with_var(var)},
        )
        for n, var in enumerate(TLS_VARS[:11])
    ]
    return cases


SECRET_ENV = {"PLANTED_CF_TOKEN": PLANTED[0], "PLANTED_BECOME": PLANTED[1]}
ISSUERS = [
    "{backend: cloudflare, token: " + PLANTED[0] + "}",
    "{backend: cloudflare, api_token: " + PLANTED[0] + "}",
    "{backend: cloudflare, token_env: " + json_str(PLANTED[0]) + "}",
    "{backend: cloudflare, token_file: " + PLANTED[2] + "}",
    "{backend: cloudflare, token_env: PLANTED_CF_TOKEN, base_url: 'http://169.254.169.254/latest'}",
    "{backend: cloudflare, token_env: PLANTED_CF_TOKEN, base_url: 'https://api.example.com/?token=x'}",
    "{backend: cloudflare, token_env: PLANTED_CF_TOKEN, base_url: 'https://u:p@api.example.com/'}",
    "{backend: cloudflare, token_env: PLANTED_CF_TOKEN, base_url: 'file:///etc/passwd'}",
    "{backend: cloudflare, token_env: PLANTED_CF_TOKEN, base_url: 'gopher://x/'}",
    "{backend: cfssl, url: 'http://169.254.169.254:8888', auth_key_file: key}",
    "{backend: cfssl, url: 'https://ca.example.com', auth_key: " + PLANTED[2] + "}",
    "{backend: cfssl, url: 'https://ca.example.com', auth_key_file: " + PLANTED[2] + "}",
    "{backend: cfssl, url: 'https://ca.example.com', auth_key_file: key644}",
    "{backend: acme, directory: 'http://169.254.169.254/dir'}",
    "{backend: acme, directory: 'https://acme.example/dir', eab_kid: k, eab_hmac_key: "
    + PLANTED[2]
    + "}",
    "{backend: acme, directory: 'https://acme.example/dir', eab_kid: k, eab_hmac_key_env: "
    + PLANTED[2]
    + "}",
    "{backend: localca}",
    "{backend: nosuch}",
    "[selfsigned]",
]


# a secret file or variable that is not on this machine: status reports without it
SECRET_NOT_HERE = (3, 11, 15)


def _issuer_cases() -> list[Case]:
    files: dict[str, str | bytes] = {"key": PLANTED[2] + "\n", "key644": PLANTED[2] + "\n"}
    cases = []
    for n, mapping in enumerate(ISSUERS):
        inv = _issuer(mapping)
        cases.append(
            Case(
                f"issuer-{n}",
                ("-vvv", "rotate", "-i", "{d}/inv.yml", "--check"),
                3 if n in SECRET_NOT_HERE else 1,  # checked, then the host is unreachable
                "",
                {"inv.yml": inv, **files},
                SECRET_ENV,
                n not in SECRET_NOT_HERE,
            )
        )
        cases.append(
            Case(
                f"status-issuer-{n}",
                ("status", "-i", "{d}/inv.yml", "--json", "--timeout", "1"),
                0 if n in SECRET_NOT_HERE else 1,
                "",
                {"inv.yml": inv, **files},
                SECRET_ENV,
                one_line=False,
            )
        )
    for n, bad in enumerate([json_str(PLANTED[1]), "MISSING_VAR"]):
        inv = TLS_HOST.replace(
            "ansible_port: 1",
            f"ansible_port: 1\n      ansible_become: true\n      become_password_env: {bad}",
        )
        # a missing variable is found when connecting, and the host is unreachable first
        code, one = (1, True) if n == 0 else (3, False)
        cases.append(
            Case(
                f"become-password-env-{n}",
                ("rotate", "-i", "{d}/inv.yml", "--check"),
                code,
                "",
                {"inv.yml": inv},
                SECRET_ENV,
                one,
            )
        )
    cases.append(
        Case(
            "promote-token-env-pasted",
            ("promote", "-i", "{d}/inv.yml", "--zone", "example.com", "--token-env", PLANTED[0]),
            2,
            "",
            {"inv.yml": TLS_HOST},
        )
    )
    cases.append(
        Case(
            "promote-api-base-http",
            (
                "promote",
                "-i",
                "{d}/inv.yml",
                "--zone",
                "example.com",
                "--token-env",
                "PLANTED_CF_TOKEN",
                "--api-base",
                "http://127.9.9.9",
            ),
            2,
            "",
            {"inv.yml": TLS_HOST},
            SECRET_ENV,
        )
    )
    return cases


USAGE_DIRS = ("ca-init-empty", "ca-init-newline", "ca-init-long")


def _ca_cases() -> list[Case]:
    def ca(id: str, *argv: str, files: Mapping[str, str] | None = None) -> Case:
        usage = "--days" in argv or "--name" in argv or id in USAGE_DIRS
        return Case(id, ("ca", *argv), 2 if usage else 1, "", dict(files or {}))

    return [
        ca("ca-init-empty", "init", ""),
        ca("ca-init-existing-file", "init", "{d}/f", files={"f": "x"}),
        ca("ca-init-dev-null", "init", "/dev/null"),
        ca("ca-init-newline", "init", "{d}/a\nb"),
        ca("ca-init-proc", "init", "/proc/x"),
        ca("ca-init-long", "init", "{d}/" + "x" * 300),
        ca("ca-init-days-neg", "init", "{d}/c", "--days", "-1"),
        ca("ca-init-days-huge", "init", "{d}/c", "--days", "1000000000"),
        ca("ca-init-name-nl", "init", "{d}/c", "--name", "a\nb"),
        ca("ca-init-name-empty", "init", "{d}/c", "--name", ""),
        ca("ca-init-name-bidi", "init", "{d}/c", "--name", "a\u202eb"),
        ca(
            "ca-revoke-garbage",
            "revoke",
            "{d}/ca",
            "{d}/cert.pem",
            files={"cert.pem": "garbage", "ca/x": ""},
        ),
    ]


def _option_cases() -> list[Case]:
    def opt(id: str, *argv: str, code: int = 2, files: Mapping[str, str] | None = None) -> Case:
        return Case(id, argv, code, "", {"inv.yml": INV, "plan.yml": PLAN, **dict(files or {})})

    i = ("-i", "{d}/inv.yml")
    cases = [
        opt(f"timeout-{v}", "status", *i, "--timeout", v)
        for v in ("0", "-1", "nan", "inf", "1e308")
    ]
    cases += [opt(f"forks-{v}", "rotate", *i, "--forks", v) for v in ("0", "-3", "100000")]
    cases += [
        opt(f"renew-before-{v}", "rotate", *i, "--renew-before", v) for v in ("-1", "1000000000000")
    ]
    cases += [
        opt("trust-missing", "status", *i, "--trust", "{d}/nosuch.pem"),
        opt("trust-not-pem", "status", *i, "--trust", "{d}/plan.yml"),
        opt("trust-dir", "status", *i, "--trust", "{d}"),
        opt("html-missing-dir", "status", *i, "--timeout", "1", "--html", "{d}/nosuch/r.html"),
        opt("html-dir", "status", *i, "--timeout", "1", "--html", "{d}"),
        opt("state-dir-file", "status", *i, "--timeout", "1", "--state-dir", "{d}/plan.yml"),
        opt("fail-within-neg", "status", *i, "--fail-within", "-5"),
        opt("limit-graph", "inventory", *i, "--graph", "--limit", "web1"),
        opt("limit-host", "inventory", *i, "--host", "web1", "--limit", "web1"),
        opt("limit-huge-slice", "run", "{d}/plan.yml", *i, "--check", "--limit", "all[0:10^23]"),
        opt(
            "limit-huge-slice-digits",
            "run",
            "{d}/plan.yml",
            *i,
            "--check",
            "--limit",
            "all[0:" + "9" * 5000 + "]",
        ),
    ]
    return cases


PATTERNS = [
    "[",
    "]",
    ":",
    ",",
    ":::",
    "[]",
    "&",
    "!",
    "~(a+)+$",
    "@{d}/nosuch",
    "&web1",
    "!all",
    "web[",
    "",
    "all:!all",
]


def _pattern_cases() -> list[Case]:
    cases = []
    for n, pattern in enumerate(PATTERNS):
        three = THREE.replace("ansible_port: 1}", "ansible_port: 1, tls_names: [a.example.com]}")
        files = {
            "inv.yml": three.replace("web1:", "a" * 40 + "X:" if "~" in pattern else "web1:"),
            "plan.yml": PLAN,
        }
        code = 1 if pattern in ("!all", "all:!all") or pattern.startswith("@") else 2
        # '&web1' alone is web1 (an intersection with nothing before it): it runs, and web1
        # is unreachable
        code, one = (3, False) if pattern == "&web1" else (code, True)
        cases.append(
            Case(f"limit-{n}", _run("inv.yml", "--limit", pattern), code, "", files, one_line=one)
        )
        cases.append(
            Case(
                f"rotate-pattern-{n}",
                ("rotate", "-i", "{d}/inv.yml", "--check", pattern),
                code,
                "",
                files,
                one_line=one,
            )
        )
    return cases


def _exit_code_cases() -> list[Case]:
    return [
        Case(
            "rotate-unreachable",
            ("rotate", "-i", "{d}/inv.yml"),
            3,
            "",
            {"inv.yml": TLS_HOST},
            one_line=False,
        ),
        Case(
            "rotate-check-unreachable",
            ("rotate", "-i", "{d}/inv.yml", "--check"),
            3,
            "",
            {"inv.yml": TLS_HOST},
            one_line=False,
        ),
    ]


def cases() -> list[Case]:
    """The whole fixed corpus."""
    return [
        *_inv_cases(),
        *_host_cases(),
        *_plan_cases(),
        *_template_cases(),
        *_extra_var_cases(),
        *_tls_cases(),
        *_issuer_cases(),
        *_ca_cases(),
        *_option_cases(),
        *_pattern_cases(),
        *_exit_code_cases(),
    ]
