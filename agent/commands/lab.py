"""`origin-agent lab up|status|inventory|down`: local origins to try plans on."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from agent.commands.argtypes import int_range
from agent.lab import Lab, default_dir, faults, fleet


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "lab",
        help="start/stop local origin hosts (sshd + nginx/apache2) to try plans on",
        description=(
            "A lab of N origin hosts on this machine (root needed): host K is originK at "
            "127.0.1.K with its own sshd, web server and copy-on-write /etc, /var, /usr. "
            "Hosts start serving plain HTTP only, like origins behind a 'Flexible' edge. "
            f"State lives in $ORIGIN_AGENT_LAB_DIR (default {default_dir()})."
        ),
    )
    parser.add_argument("--dir", type=Path, default=None, help="lab state directory")
    lsub = parser.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    up = _add_up(lsub)
    st = lsub.add_parser("status", help="show hosts, their processes and memory")
    st.add_argument("--json", action="store_true", help="one JSON document")
    st.set_defaults(func=_status)
    inv = lsub.add_parser("inventory", help="print the lab's inventory (Ansible-compatible YAML)")
    inv.set_defaults(func=_inventory)
    fault = _add_fault(lsub)
    for action in (up, st, inv, fault):
        action.add_argument(
            "--dir",
            type=Path,
            default=argparse.SUPPRESS,
            help="lab state directory (also accepted before ACTION)",
        )
    down = lsub.add_parser(
        "down", help="stop every lab process (by recorded PID) and remove the lab"
    )
    down.set_defaults(func=_down)
    down.add_argument("--dir", type=Path, default=argparse.SUPPRESS, help="lab state directory")


def _add_up(lsub: Any) -> argparse.ArgumentParser:
    up = lsub.add_parser("up", help="start N hosts", description="Start N lab hosts.")
    up.add_argument("count", type=int, metavar="N", help="number of hosts (1-250)")
    up.add_argument(
        "--apache",
        type=int,
        default=0,
        metavar="M",
        help="the last M hosts run apache2 instead of nginx",
    )
    up.add_argument(
        "--bare",
        type=int,
        default=0,
        metavar="B",
        help="B hosts (before the apache ones) run no web server: bootstrap material",
    )
    up.add_argument(
        "--first",
        type=int,
        default=1,
        metavar="K",
        help="number of the first host (originK at 127.0.1.K); default 1",
    )
    up.add_argument(
        "--redis",
        action="store_true",
        help="also start a local redis-server (random password, in DIR/broker.env) for "
        "--executor celery",
    )
    up.add_argument(
        "--workers",
        type=int_range(0, 16),
        default=0,
        metavar="W",
        help="also start W 'origin-agent worker' processes on that Redis (implies --redis)",
    )
    up.set_defaults(func=_up)
    return up  # type: ignore[no-any-return]


def _add_fault(lsub: Any) -> argparse.ArgumentParser:
    fault = lsub.add_parser(
        "fault",
        help="inject (or --undo) a reversible fault on one lab host",
        description="Faults: " + "; ".join(f"{f.name}: {f.help}" for f in faults.FAULTS.values()),
    )
    fault.add_argument("host", help="lab host name, e.g. origin2")
    fault.add_argument(
        "fault",
        choices=sorted(faults.FAULTS),
        metavar="FAULT",
        help="one of: " + ", ".join(sorted(faults.FAULTS)),
    )
    fault.add_argument("--undo", action="store_true", help="remove the fault again")
    fault.set_defaults(func=_fault)
    return fault  # type: ignore[no-any-return]


def _up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    lab = Lab.up(args.count, apache=args.apache, bare=args.bare, dir=args.dir, first=args.first)
    elapsed = time.monotonic() - started
    rss = sum(h.memory_kib() for h in lab.hosts)
    print(f"lab up: {len(lab.hosts)} hosts in {elapsed:.1f} s, {rss / 1024:.0f} MiB resident")
    for host in lab.hosts:
        print(f"  {host.name:<10} {host.address:<12} {host.server}")
    print(f"inventory: {lab.inventory_path}")
    print(
        f"look around: ssh -i {lab.key_file} -o UserKnownHostsFile={lab.known_hosts} root@{lab.hosts[0].address}"
    )
    if args.redis or args.workers:
        _fleet_up(lab, args.workers)
    print("stop it:     origin-agent lab down")
    return 0


def _fleet_up(lab: Lab, workers: int) -> None:
    """Redis and workers beside the lab; stopped (and the lab too) if they cannot start."""
    try:
        url, started = fleet.start(lab.dir, workers)
    except BaseException:
        fleet.stop(lab.dir)
        lab.down()
        raise
    from agent.fleet.app import safe_url

    env = fleet.broker_file(lab.dir)
    print(f"fleet: {safe_url(url)} and {workers} workers (PIDs in {lab.dir}/fleet.json)")
    print(
        f"rotate on the workers: set -a; . {env}; set +a; "
        f"origin-agent rotate -i {lab.inventory_path} --executor celery"
    )


def _status(args: argparse.Namespace) -> int:
    lab = Lab.load(args.dir)
    rows = lab.status()
    if args.json:
        json.dump({"dir": str(lab.dir), "hosts": rows}, sys.stdout, indent=1)
        print()
    else:
        print(
            f"{'host':<10} {'address':<12} {'server':<7} {'sshd':<5} {'web':<5} {'procs':>5} {'MiB':>6}"
        )
        for r in rows:
            print(
                f"{r['name']!s:<10} {r['address']!s:<12} {r['server']!s:<7} "
                f"{'up' if r['sshd'] else 'down':<5} {'up' if r['web'] else 'down':<5} "
                f"{r['processes']!s:>5} {int(str(r['rss_kib'])) / 1024:>6.1f}"
            )
    return 0 if all(r["running"] for r in rows) else 1


def _inventory(args: argparse.Namespace) -> int:
    sys.stdout.write(Lab.load(args.dir).inventory_text())
    return 0


def _down(args: argparse.Namespace) -> int:
    lab = Lab.load(args.dir)
    stopped = fleet.stop(lab.dir)
    stopped += lab.down()
    print(f"lab down: {len(lab.hosts)} hosts, {stopped} processes stopped, {lab.dir} removed")
    return 0


def _fault(args: argparse.Namespace) -> int:
    host = Lab.load(args.dir).host(args.host)
    fault = faults.get(args.fault)
    (fault.undo if args.undo else fault.inject)(host)
    print(f"{host.name}: {fault.name} {'undone' if args.undo else 'injected'}")
    return 0
