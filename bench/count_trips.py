"""Run the origin-agent CLI in this process and report each host's SSH round trips.

    python -m bench.count_trips OUT.json -- run PLAN -i INV ...

The CLI runs unchanged; the only addition is a wrapper around ``SSHConnection.close`` that
copies the connection's ``counters`` (commands and SFTP operations made after the connection
was opened: :class:`agent.transport.base.Counters`) before it closes. ``OUT.json`` gets
``{host: {"commands": c, "file_ops": f, "round_trips": c + f}}``.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any


def main(argv: list[str]) -> int:
    out_path, rest = argv[0], argv[argv.index("--") + 1 :]
    from agent.cli import main as cli_main
    from agent.transport.ssh import SSHConnection

    seen: dict[str, dict[str, int]] = {}
    lock = threading.Lock()
    original = SSHConnection.close

    def close(self: SSHConnection) -> None:
        c = self.counters
        with lock:
            seen[self.host] = {
                "commands": c.commands,
                "file_ops": c.file_ops,
                "round_trips": c.round_trips,
            }
        original(self)

    SSHConnection.close = close  # type: ignore[method-assign]
    try:
        code = cli_main(rest)
    finally:
        with open(out_path, "w") as fh:
            json.dump(seen, fh, indent=1, sort_keys=True)
    return int(code)


if __name__ == "__main__":
    result: Any = main(sys.argv[1:])
    sys.exit(result)
