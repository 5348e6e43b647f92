"""`origin-agent run PLAN -i INVENTORY ...`: apply a plan to an inventory's hosts."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from typing import Any

from agent.commands.inventory import configure_services
from agent.errors import UsageError

EPILOG = """\
Exit codes: 0 every host ok (or changed); 1 some host failed, the run was stopped by a failure
threshold, or the input is bad (plan, inventory, -e); 2 usage error; 3 some host was
unreachable and none failed (a run with both failed and unreachable hosts exits 1).

Extra variables: -e key=value (a string; several pairs may be given space-separated, shell
quoted, when every word is a pair; else the whole text after '=' is the value),
-e '{"key": [1, 2]}' (YAML/JSON), or -e @vars.yml; they override every other variable.
Variables: inventory < play vars < vars_files < registered results < -e.
"""

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "run",
        help="apply a plan (playbook-like YAML) to the hosts of an inventory",
        description="Apply PLAN to the hosts of INVENTORY: the whole plan is checked for every "
        "host first (file:line:col errors), then plays run in rolling batches.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("plan", metavar="PLAN", help="plan file (YAML)")
    parser.add_argument(
        "-i",
        "--inventory",
        action="append",
        required=True,
        metavar="INVENTORY",
        help="inventory file, directory or host list (repeatable)",
    )
    parser.add_argument("-l", "--limit", metavar="PATTERN", help="only hosts matching PATTERN")
    parser.add_argument(
        "-C",
        "--check",
        action="store_true",
        help="change nothing anywhere; report what would change",
    )
    parser.add_argument(
        "-D",
        "--diff",
        action="store_true",
        help="show unified diffs of files (secret files redacted)",
    )
    parser.add_argument(
        "-f",
        "--forks",
        type=int,
        default=20,
        metavar="N",
        help="hosts worked on at once (default 20)",
    )
    parser.add_argument(
        "-t",
        "--tags",
        action="append",
        default=[],
        metavar="TAGS",
        help="only tasks with one of these tags (comma-separated; repeatable)",
    )
    parser.add_argument(
        "--skip-tags",
        action="append",
        default=[],
        metavar="TAGS",
        help="skip tasks with any of these tags",
    )
    parser.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="VARS",
        help="key=value, YAML/JSON mapping, or @file.yml (repeatable)",
    )
    parser.add_argument(
        "--json", action="store_true", help="JSON lines on stdout, one object per event"
    )
    add_run_options(parser)
    parser.set_defaults(func=run)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options every command that runs a plan shares (run, rotate, bootstrap)."""
    parser.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="record unknown SSH host keys (a changed key is always refused)",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="local state: issued certificates, ACME account, runs "
        "(default $ORIGIN_AGENT_STATE_DIR or ~/.local/state/origin-agent)",
    )


def _tags(values: list[str]) -> frozenset[str]:
    return frozenset(t.strip() for v in values for t in v.split(",") if t.strip())


def parse_extra_vars(values: list[str]) -> dict[str, Any]:
    """Merge ``-e`` values, later ones winning.

    Raises:
        UsageError: a malformed value, a name that is not an identifier.
        PlanError: an unreadable or invalid @file.
    """
    from agent.plan.load import load_yaml, load_yaml_text

    out: dict[str, Any] = {}
    for value in values:
        if value.startswith("@"):
            data = load_yaml(value[1:])
            where = value[1:]
        elif value.lstrip().startswith("{"):
            data = load_yaml_text(value, "-e")
            where = "-e"
        else:
            data = {}
            try:
                words = shlex.split(value)
            except ValueError as err:
                raise UsageError(f"-e {value!r}: {err}") from None
            if not all("=" in w for w in words):
                words = [value]  # "msg=hi there": one pair whose value has spaces
            for word in words:
                key, sep, val = word.partition("=")
                if not sep:
                    raise UsageError(f"-e {word!r}: expected key=value, a mapping or @file")
                data[key] = val
            where = "-e"
        if data is None:
            continue
        if not isinstance(data, dict):
            raise UsageError(f"{where}: extra variables must be a mapping")
        for key in data:
            if not isinstance(key, str) or not _IDENT.match(key):
                raise UsageError(f"{where}: invalid variable name {key!r}")
        out.update(_plain(data))
    return out


class _Tee:
    """Sends every event to the reporter and to an observer."""

    def __init__(self, first: Any, second: Any) -> None:
        self.first, self.second = first, second

    def emit(self, event: Any) -> None:
        self.first.emit(event)
        self.second.emit(event)

    def close(self) -> None:
        self.first.close()
        self.second.close()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def run(args: argparse.Namespace) -> int:
    """Load everything, check the plan for every host, run it, report; returns the exit code."""
    from agent import transport
    from agent.inventory import Host, connection_spec, load
    from agent.inventory.model import ConnectionSpec
    from agent.plan.parse import PlanErrors, load_plan
    from agent.report.events import Reporter
    from agent.report.human import HumanReporter
    from agent.report.jsonl import JsonReporter
    from agent.runner.engine import Runner, RunOptions
    from agent.transport.base import Connection

    if args.forks < 1:
        raise UsageError("--forks must be at least 1")
    extra = parse_extra_vars(args.extra_vars)
    try:
        plan = load_plan(args.plan)
        inventory = load(list(args.inventory))
        configure_services(args)
        specs: dict[str, ConnectionSpec] = {}

        def select(pattern: str) -> list[Host]:
            hosts = inventory.select(pattern, args.limit)
            for host in hosts:
                if host.name not in specs:
                    specs[host.name] = connection_spec(host)
            return hosts

        def connect(host: Host) -> Connection:
            return transport.connect(
                specs[host.name], accept_new_host_keys=args.accept_new_host_keys
            )

        reporter: Reporter = (
            JsonReporter() if args.json else HumanReporter(verbose=getattr(args, "verbose", 0))
        )
        observer = getattr(args, "observer", None)  # e.g. rotate's summary
        if observer is not None:
            reporter = _Tee(reporter, observer)
        options = RunOptions(
            check=args.check,
            diff=args.diff,
            forks=args.forks,
            tags=_tags(args.tags),
            skip_tags=_tags(args.skip_tags),
            extra_vars=extra,
        )
        try:
            result = Runner(plan, select, connect, reporter, options).run()
        finally:
            reporter.close()
    except PlanErrors as many:
        for err in many.errors:
            sys.stderr.write(f"origin-agent: {err}\n")
        if len(many.errors) > 1:
            sys.stderr.write(f"origin-agent: {len(many.errors)} problems; nothing was run\n")
        return 1
    return result.exit_code
