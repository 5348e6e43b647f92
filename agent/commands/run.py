"""`origin-agent run PLAN -i INVENTORY ...`: apply a plan to an inventory's hosts.

Also how every plan-running command runs its plan: a typed :class:`PlanRun` handed to
:func:`execute` with an optional observer of the events; ``rotate`` and ``bootstrap`` run a
bundled plan through :func:`run_bundled`.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.commands import options
from agent.errors import InventoryError, UsageError
from agent.report.events import Event, Reporter

if TYPE_CHECKING:
    from agent.runner.engine import RunOptions
from agent.resources import data_dir

if TYPE_CHECKING:
    from agent.inventory import Host, Inventory
    from agent.inventory.model import ConnectionSpec
    from agent.transport.base import Connection

EPILOG = """\
Exit codes: 0 every host ok (or changed); 1 some host failed, the run was stopped by a failure
threshold, or the input is bad (plan, inventory, -e); 2 usage error; 3 some host was
unreachable and none failed (a run with both failed and unreachable hosts exits 1); 5 another
run holds the lock of this inventory and state store (it is named; see --wait); 6 the fleet's
broker (--executor celery) is unreachable or was lost mid-run (resume with --resume RUN_ID).

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
    options.add_plan_run_options(parser)
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
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class PlanRun:
    """One run of a plan, as the command line asked for it (typed; no argparse beyond here)."""

    plan: str
    inventory: tuple[str, ...]
    extra_vars: Mapping[str, Any]
    limit: str | None = None
    check: bool = False
    diff: bool = False
    forks: int = options.DEFAULT_FORKS
    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()
    json: bool = False
    verbose: int = 0
    accept_new_host_keys: bool = False
    state_dir: str | None = None
    wait: float = 0.0  # seconds to wait for another run's lock (check mode takes none)
    executor: str = "local"  # or "celery": agent.fleet
    broker: str | None = None
    task_timeout: float = 600.0
    hosts_per_task: int = 10
    resume: str | None = None

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, plan: str, extra_vars: Mapping[str, Any]
    ) -> PlanRun:
        """The options of :func:`agent.commands.options.add_plan_run_options`, with the plan and
        the extra variables the command settled on (``run``: ``-e``; ``rotate``: its flags too).
        """
        return cls(
            plan=plan,
            inventory=tuple(args.inventory),
            extra_vars=extra_vars,
            limit=args.limit,
            check=args.check,
            diff=args.diff,
            forks=args.forks,
            tags=_tags(getattr(args, "tags", [])),
            skip_tags=_tags(getattr(args, "skip_tags", [])),
            json=args.json,
            verbose=getattr(args, "verbose", 0),
            accept_new_host_keys=args.accept_new_host_keys,
            state_dir=args.state_dir,
            wait=args.wait or 0.0,
            executor=args.executor,
            broker=args.broker,
            task_timeout=args.task_timeout,
            hosts_per_task=args.hosts_per_task,
            resume=args.resume,
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
        for number, key in enumerate(data, 1):
            if not isinstance(key, str) or not _IDENT.match(key):
                # a file's keys are not echoed: `-e @/etc/shadow` would print password hashes
                shown = f"{key!r}" if where == "-e" and len(repr(key)) <= 60 else f"#{number}"
                raise UsageError(
                    f"{where}: invalid variable name {shown} (letters, digits and '_')"
                )
        out.update(_plain(data))
    return out


class _Tee:
    """Sends every event to the reporter and to an observer."""

    def __init__(self, first: Reporter, second: Reporter) -> None:
        self.first, self.second = first, second

    def emit(self, event: Event) -> None:
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
    """``origin-agent run``: the plan named on the command line with the ``-e`` variables."""
    return execute(PlanRun.from_args(args, args.plan, parse_extra_vars(args.extra_vars)))


def bundled_plan(name: str) -> str:
    """Path of ``plans/NAME.yml`` shipped with origin-agent.

    Raises:
        UsageError: the plan is missing (an install without the plans/ folder).
    """
    path = data_dir("plans") / f"{name}.yml"
    if not path.is_file():
        raise UsageError(
            f"bundled plan {path} is missing",
            where=name,
            hint="reinstall origin-agent from its source tree",
        )
    return str(path)


def bundled_vars(
    command: str, command_vars: Mapping[str, Any], target: str, user_vars: Mapping[str, Any]
) -> dict[str, Any]:
    """The extra variables of a bundled plan's run: the command's own typed variables first,
    then ``target`` (the command's hosts), then the user's ``-e`` over the rest.

    Raises:
        UsageError: ``-e`` sets ``target`` (hosts are the command's arguments).
    """
    if "target" in user_vars:
        raise UsageError("give hosts as arguments, not as -e target=...", where=command)
    return {**command_vars, "target": target, **user_vars}


def run_bundled(
    args: argparse.Namespace,
    name: str,
    target: str,
    command_vars: Mapping[str, Any],
    observer: Reporter | None = None,
) -> int:
    """Run the bundled plan ``name`` on the hosts ``target`` (see :func:`bundled_vars`);
    ``observer`` sees every event of the run.

    Raises:
        UsageError: a malformed ``-e`` or one setting ``target``; a missing bundled plan.
    """
    extra_vars = bundled_vars(args.command, command_vars, target, parse_extra_vars(args.extra_vars))
    return execute(PlanRun.from_args(args, bundled_plan(name), extra_vars), observer)


def execute(request: PlanRun, observer: Reporter | None = None) -> int:
    """Load everything, check the plan for every host, run it, report; returns the exit code.

    ``observer`` sees every event the reporter sees (``rotate`` counts its hosts with one).
    One run at a time per inventory and state store (check mode changes nothing: no lock).

    Raises:
        RunLockedError: another run holds the lock (exit 5), still after ``request.wait``.
    """
    from agent.state.lock import held

    if request.check:
        return _execute(request, observer)
    with held(request.inventory, state_dir=request.state_dir, wait=request.wait):
        return _execute(request, observer)


class _Hosts:
    """A run's host selection (``select``) and connections (``connect``): each selected host's
    connection settings are resolved once, with ``-e`` overriding the inventory's."""

    def __init__(self, inventory: Inventory, request: PlanRun) -> None:
        self.inventory = inventory
        self.request = request
        self.specs: dict[str, ConnectionSpec] = {}

    def select(self, pattern: str) -> list[Host]:
        """Raises: NoHostError: ``pattern`` matches no host (not even before ``--limit``)."""
        from agent.errors import NoHostError
        from agent.inventory import connection_spec, with_overrides

        limit = self.request.limit
        hosts = self.inventory.select(pattern, limit)
        if not hosts and (limit is None or not self.inventory.select(pattern)):
            raise NoHostError(f"host pattern {pattern!r} matches no host")
        for host in hosts:
            if host.name not in self.specs:
                spec = connection_spec(with_overrides(host, self.request.extra_vars))
                self.specs[host.name] = spec
        return hosts

    def connect(self, host: Host) -> Connection:
        from agent import transport

        return transport.connect(
            self.specs[host.name], accept_new_host_keys=self.request.accept_new_host_keys
        )


def _execute(request: PlanRun, observer: Reporter | None) -> int:
    from agent.plan.parse import PlanErrors, load_plan
    from agent.report.human import HumanReporter
    from agent.report.jsonl import JsonReporter
    from agent.runner.engine import Runner, RunOptions

    if request.forks < 1:
        raise UsageError("--forks must be at least 1")
    try:
        plan = load_plan(request.plan)
        inventory = options.load_inventory(request.inventory)
        options.configure_services(request.inventory, request.state_dir)
        hosts = _Hosts(inventory, request)
        specs = hosts.specs
        select, connect = hosts.select, hosts.connect
        reporter: Reporter = (
            JsonReporter() if request.json else HumanReporter(verbose=request.verbose)
        )
        if observer is not None:
            reporter = _Tee(reporter, observer)
        run_options = RunOptions(
            check=request.check,
            diff=request.diff,
            forks=request.forks,
            tags=request.tags,
            skip_tags=request.skip_tags,
            extra_vars=request.extra_vars,
        )
        try:
            result = Runner(plan, select, connect, reporter, *_fleet(request, run_options)).run()
        finally:
            reporter.close()
        if not specs:
            raise InventoryError(
                "no host matches the plays' host patterns"
                + (f" and --limit {request.limit!r}" if request.limit else "")
                + "; nothing was run"
            )
    except PlanErrors as many:
        for err in many.errors:
            sys.stderr.write(f"origin-agent: {err}\n")
        if len(many.errors) > 1:
            sys.stderr.write(f"origin-agent: {len(many.errors)} problems; nothing was run\n")
        return 1
    return result.exit_code


def _fleet(request: PlanRun, run_options: RunOptions) -> tuple[RunOptions, Any]:
    """The run's options and batch executor: ``--executor celery`` sends batches to Celery
    workers (on the fleet run's clock); local keeps both as they are (None: threads here).

    Raises:
        BrokerError: no broker, or it cannot be reached (exit 6).
        UsageError: fleet options without ``--executor celery``.
    """
    if request.executor != "celery":
        if request.resume or request.broker:
            raise UsageError("--broker and --resume need --executor celery")
        return run_options, None
    from agent.fleet.app import broker_from
    from agent.fleet.controller import FleetRequest, open_fleet

    executor, now = open_fleet(
        FleetRequest(
            broker=broker_from(request.broker),
            plan=request.plan,
            inventory=request.inventory,
            check=request.check,
            diff=request.diff,
            forks=request.forks,
            tags=request.tags,
            skip_tags=request.skip_tags,
            extra_vars=dict(request.extra_vars),
            accept_new_host_keys=request.accept_new_host_keys,
            task_timeout=request.task_timeout,
            hosts_per_task=request.hosts_per_task,
            resume=request.resume,
            limit=request.limit,
        ),
        options.load_inventory(request.inventory).hosts.values(),  # each worker_queue checked
    )
    return dataclasses.replace(run_options, now=now), executor
