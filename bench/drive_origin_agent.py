"""origin-agent's rotation without the CLI and the runner: the same pieces, in-process.

    python -m bench.drive_origin_agent INVENTORY [--force]

Loads the inventory (:func:`agent.inventory.load`), opens one connection per host
(:func:`agent.transport.connect`), runs the ``tls_origin`` module (arguments checked and
defaulted as a plan would: :func:`agent.modules.args.check_args`) in one thread per host with a
:class:`~agent.modules.apply.ConnectionApplier` and a :class:`~agent.modules.base.Context`, and
prints one JSON line per host (changed, error, round trips from ``Connection.counters``) and a
summary line. Exit 0 when every host succeeded. It measures the module and the transport
without the runner, the plan layer and the reporters (compare with ``origin-agent run``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any


def main(argv: list[str]) -> int:
    from agent.errors import AgentError
    from agent.inventory import connection_spec, load
    from agent.modules.apply import ConnectionApplier
    from agent.modules.args import check_args
    from agent.modules.base import Context
    from agent.modules.tls import services
    from agent.modules.tls.origin import TlsOriginModule
    from agent.transport import connect

    inventory_path = argv[0]
    force = "--force" in argv[1:]
    inventory = load([inventory_path])
    hosts = inventory.select("all")
    services.configure(
        state_dir=os.environ.get("ORIGIN_AGENT_STATE_DIR") or None,
        base_dir=os.path.dirname(os.path.abspath(inventory_path)),
    )
    params, problems = check_args(TlsOriginModule, {"force": force})
    if problems:
        print(f"bad arguments: {problems}", file=sys.stderr)
        return 2
    module = TlsOriginModule()
    now = datetime.now(UTC)
    results: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def work(host: Any) -> None:
        out: dict[str, Any] = {"host": host.name}
        conn = None
        try:
            conn = connect(connection_spec(host))
            ctx = Context(host=host.name, now=now, vars=host.vars)
            result = module.run(conn, params, ctx, ConnectionApplier(conn))
            out.update(ok=True, changed=bool(result.data.get("changed")))
        except AgentError as err:
            out.update(ok=False, error=str(err))
        except Exception as err:  # noqa: BLE001 - a bug: report it per host
            out.update(ok=False, error=f"internal error: {type(err).__name__}: {err}")
        finally:
            if conn is not None:
                c = conn.counters
                out.update(commands=c.commands, file_ops=c.file_ops, round_trips=c.round_trips)
                conn.close()
        with lock:
            results[host.name] = out

    threads = [threading.Thread(target=work, args=(h,), name=f"host-{h.name}") for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return report(len(hosts), results)


def report(hosts: int, results: dict[str, dict[str, Any]]) -> int:
    """Print one JSON line per host, then the summary; the exit status."""
    for name in sorted(results):
        print(json.dumps(results[name]))
    ok = [r for r in results.values() if r["ok"]]
    print(
        json.dumps(
            {
                "event": "summary",
                "hosts": hosts,
                "ok": len(ok),
                "changed": sum(1 for r in ok if r["changed"]),
                "max_round_trips": max(
                    (r.get("round_trips", 0) for r in results.values()), default=0
                ),
            }
        )
    )
    return 0 if len(ok) == hosts else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
