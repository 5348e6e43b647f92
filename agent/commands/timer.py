"""`origin-agent timer install|remove|status`: scheduled rotations on this controller."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from agent.commands import options
from agent.errors import UsageError

NAME_HELP = "timer name: a-z, 0-9 and '-' (default rotate)"

DESCRIPTION = """\
Run `rotate` (then `status --fail-within`) for an inventory on a schedule, unattended: a
systemd service and timer (OnCalendar, RandomizedDelaySec, Persistent=true; logs in the
journal) where systemd runs, else a file in /etc/cron.d (a random delay first; logs in
/var/log/origin-agent/NAME.log). Secrets reach the run through an environment file
/etc/origin-agent/NAME.env (0600): --env NAME copies a variable from this shell, and --notify
URLs are kept there too (webhook URLs hold tokens), never in the unit or cron file. A
scheduled run waits up to --wait seconds (3600 unless given) for another run of the same
inventory, and alerts on certificates expiring within --fail-within days (14 unless given).
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "timer",
        help="run rotate on a schedule (systemd timer, or cron where systemd is not running)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    install = actions.add_parser("install", help="write and enable a timer for an inventory")
    install.add_argument("name", nargs="?", default="rotate", help=NAME_HELP)
    options.add_inventory(install, required=True)
    install.add_argument(
        "--schedule",
        default="17 3 * * *",
        help="cron fields (minute hour day month weekday) or @hourly/@daily/@weekly "
        "(default '17 3 * * *')",
    )
    install.add_argument(
        "--randomized-delay",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="start up to SECONDS late, at random (default 3600)",
    )
    options.add_fail_within(install)
    options.add_renew_before(install)
    options.add_metrics_and_alerts(install)
    options.add_wait(install)
    options.add_state_dir(install)
    install.add_argument(
        "--env", action="append", default=[], metavar="NAME", help="copy NAME from this shell"
    )
    install.add_argument("--user", default="root", help="run as USER (default root)")
    install.add_argument("--executable", metavar="PATH", help="origin-agent to run")
    _common(install)
    remove = actions.add_parser("remove", help="disable and delete a timer")
    remove.add_argument("name", nargs="?", default="rotate", help=NAME_HELP)
    remove.add_argument("--keep-env", action="store_true", help="keep the environment file")
    _common(remove)
    show = actions.add_parser("status", help="list installed timers and their last run")
    _common(show)
    parser.set_defaults(func=run)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scheduler",
        choices=("auto", "systemd", "cron"),
        default="auto",
        help="auto (default): systemd if it runs on this machine and --root is /, else cron",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        metavar="DIR",
        help="write the files under DIR instead of / (an image, a test)",
    )


def _executable(given: str | None) -> str:
    if given:
        return given
    beside = Path(sys.executable).parent / "origin-agent"
    found = str(beside) if beside.is_file() else shutil.which("origin-agent")
    if not found:
        raise UsageError("cannot find the origin-agent executable", hint="give --executable PATH")
    return os.path.abspath(found)


def _install(args: argparse.Namespace) -> list[str]:
    from agent.jobs import timer, timer_files
    from agent.report.notify import check_url
    from agent.state.paths import default_state_dir

    inventories = []
    for source in args.inventory:
        if not os.path.exists(source):
            raise UsageError(f"inventory {source!r} not found (a timer needs a file)", where="-i")
        inventories.append(timer.check_unit_path(os.path.abspath(source), "-i"))
    state = os.path.abspath(args.state_dir or str(default_state_dir()))
    spec = timer.TimerSpec(
        name=timer.check_name(args.name),
        executable=timer.check_unit_path(_executable(args.executable), "--executable"),
        inventories=tuple(inventories),
        state_dir=timer.check_unit_path(state, "--state-dir"),
        schedule=args.schedule,
        randomized_delay=max(0, args.randomized_delay),
        fail_within=14 if args.fail_within is None else args.fail_within,
        renew_before=args.renew_before,
        prometheus=timer.check_unit_path(os.path.abspath(str(args.prometheus)), "--prometheus")
        if args.prometheus
        else None,
        wait=3600 if args.wait is None else max(0, int(args.wait)),
        user=timer.check_user(args.user),
    )
    timer.parse_schedule(spec.schedule)
    env = {}
    for name in args.env:
        if name not in os.environ:
            raise UsageError(f"{name} is not set in this shell", where="--env")
        env[name] = os.environ[name]
    for url in args.notify:
        if check_url(url):
            raise UsageError(str(check_url(url)), where="--notify")
    if args.notify:
        env[timer.NOTIFY_ENV] = " ".join(args.notify)
    scheduler = timer_files.choose(args.scheduler, args.root)
    return timer_files.install(spec, env, root=args.root, scheduler=scheduler)


def run(args: argparse.Namespace) -> int:
    from agent.jobs import timer, timer_files

    if args.root == Path("/") and args.action != "status" and os.geteuid() != 0:
        raise UsageError(
            f"timer {args.action} writes under /etc", hint="run it as root, or give --root DIR"
        )
    if args.action == "install":
        lines = _install(args)
    elif args.action == "remove":
        lines = timer_files.remove(
            timer.check_name(args.name), root=args.root, keep_env=args.keep_env
        )
    else:
        lines = timer_files.status(args.root)
    for line in lines:
        print(line)
    return 0
