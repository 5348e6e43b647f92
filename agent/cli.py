"""Command line: parse arguments, load files, pick the reporter. No logic of its own.

Each subcommand lives in ``agent/commands/<name>.py`` and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func`` to a callable
``func(args) -> int`` (the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence

from agent import __version__
from agent.errors import AgentError
from agent.validate import terminal_safe

# Order is the order shown in --help.
COMMANDS: tuple[str, ...] = (
    "run",
    "rotate",
    "bootstrap",
    "status",
    "pins",
    "promote",
    "inventory",
    "ca",
    "lab",
    "timer",
    "worker",
    "doc",
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

log = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        # the message quotes the value given: one line, no terminal controls
        sys.stderr.write(f"{self.prog}: error: {terminal_safe(message)}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``only`` one command's (each command module is imported only
    when its command is parsed, so `origin-agent run` does not load what `status` needs)."""
    parser = _Parser(
        prog="origin-agent",
        description=(
            "Move web origins behind a CDN edge up the TLS ladder (Flexible -> Full -> "
            "Full (strict)) and keep them there: keys, certificates, nginx/apache TLS sites, "
            "graceful reloads and verification, agentless over SSH."
        ),
        epilog="Exit codes: 0 success, 1 failure (a host failed or bad input), 2 usage error, "
        "3 some hosts unreachable, 5 another run holds the lock, 6 the fleet's broker is "
        "unreachable or lost ('origin-agent doc exit-codes' lists every one). Run "
        "'origin-agent COMMAND --help' for details, 'origin-agent doc' for the reference.",
    )
    parser.add_argument("--version", action="version", version=f"origin-agent {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more detail on stderr (-vvv for debug); secrets are never shown",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS if only is None else (only,):
        importlib.import_module(f"agent.commands.{name}").register(sub)
    return parser


def _write_debug_log(text: str) -> str:
    """Write ``text`` to a new 0600 file and return its path, or ``""`` if none could be made.

    The name is random and the file is created with O_EXCL (``mkstemp``), so a symlink or file
    planted under a predictable name in a shared /tmp is never followed or truncated.
    """
    base = os.environ.get("ORIGIN_AGENT_LOG_DIR") or tempfile.gettempdir()
    try:
        fd, path = tempfile.mkstemp(
            prefix=f"origin-agent-debug-{os.getpid()}-", suffix=".log", dir=base
        )
    except OSError:
        return ""
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``origin-agent`` command; returns the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    first = next((w for w in words if not w.startswith("-")), None)
    parser = build_parser(first if first in COMMANDS else None)
    args = parser.parse_args(words)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(func(args))
    except AgentError as err:
        # the message quotes input (host names, file text): one line, no terminal controls
        # (an error listing several problems has one line per problem)
        lines = [terminal_safe(line) for line in str(err).split("\n")]
        sys.stderr.write("origin-agent: " + "\n".join(lines) + "\n")
        return err.exit_code
    except BrokenPipeError:  # e.g. `origin-agent status | head`: the reader left, say nothing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt:
        sys.stderr.write("origin-agent: interrupted\n")
        return 130
    except Exception:  # our bug: one line, traceback to a file
        path = _write_debug_log(traceback.format_exc())
        where = f"details in {path}" if path else "no debug log could be written"
        sys.stderr.write(f"origin-agent: internal error; {where}\n")
        return EXIT_FAILED
