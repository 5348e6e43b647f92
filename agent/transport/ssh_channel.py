"""One command's conversation on an SSH session channel (see :mod:`agent.transport.ssh`).

Its stdin is sent as the channel accepts it, but only once the command runs (through sudo:
after sudo printed our start marker); stdout and stderr are read as they arrive; sudo's
password prompt is answered once, with the password, and a second prompt (refused) or a prompt
without a password closes stdin so that sudo fails; a deadline bounds the whole.
"""

from __future__ import annotations

import select
import time

import paramiko

from agent.errors import CommandError
from agent.transport.common import as_text, display

_POLL = 0.5
"""Upper bound on one wait (seconds). Output, EOF and close wake the wait at once (the
channel's pipe), and so does the exit status once the output ended; only a deadline needs the
bound."""


class _Conversation:
    """What was sent and received so far on ``chan``."""

    def __init__(
        self, chan: paramiko.Channel, stdin: bytes, become_user: str | None, marker: str
    ) -> None:
        self.chan = chan
        self.out, self.err = bytearray(), bytearray()
        self.pending = memoryview(stdin)
        self.started = become_user is None
        self.stdin_closed = False
        self.prompt = f"[{marker}-prompt]".encode()
        self.start = f"[{marker}-start]\n".encode()
        self.prompts_answered = 0

    def send_stdin(self) -> None:
        """Send what the channel takes now; close stdin once all is sent."""
        if self.started and not self.stdin_closed:
            while self.pending and self.chan.send_ready():
                self.pending = self.pending[self.chan.send(bytes(self.pending[:32768])) :]
            if not self.pending:
                self.chan.shutdown_write()
                self.stdin_closed = True

    def receive(self) -> None:
        """Read what stdout and stderr hold now."""
        while self.chan.recv_ready():
            self.out += self.chan.recv(65536)
        while self.chan.recv_stderr_ready():
            self.err += self.chan.recv_stderr(65536)

    def watch_sudo(self, password: str | None) -> bool:
        """Before the command runs: True once sudo's start marker arrived (it is cut from
        stderr with what came before it); else answer a new prompt."""
        at = self.err.find(self.start)
        if at >= 0:
            del self.err[: at + len(self.start)]
            self.started = True
            return True
        prompts = self.err.count(self.prompt)
        if prompts > self.prompts_answered:
            if self.prompts_answered == 0 and password is not None:
                self.chan.sendall((password + "\n").encode())
            else:  # no password, or it was refused: let sudo fail
                self.chan.shutdown_write()
                self.stdin_closed = True
            self.prompts_answered = prompts
        return False

    def ended(self) -> bool:
        """The command exited and its output ended; what is still buffered is read."""
        # The exit status can arrive before the last output: stop only when the server has
        # also said the output ended (EOF), then drain what is buffered.
        if self.chan.exit_status_ready() and (self.chan.eof_received or self.chan.closed):
            self.receive()
            return True
        return False


def converse(
    chan: paramiko.Channel,
    args: tuple[str, ...],
    stdin: bytes,
    become_user: str | None,
    password: str | None,
    marker: str,
    timeout: float | None,
    *,
    host: str,
) -> tuple[int, bytes, bytes]:
    """Talk to the command started on ``chan``; return ``(exit code, stdout, stderr)``.

    Raises:
        CommandError: the deadline passed, or sudo refused to start the command.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    talk = _Conversation(chan, stdin, become_user, marker)
    fd = chan.fileno()
    for _ in range(10_000_000):  # bounded: the deadline or the channel ends it long before
        talk.send_stdin()
        talk.receive()
        if not talk.started and talk.watch_sudo(password):
            continue
        if talk.ended():
            break
        wait = _POLL
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
            if wait <= 0:
                raise CommandError(
                    f"{display(args)} timed out after {timeout:g}s",
                    host=host,
                    argv=args,
                    exit_code=124,
                    stderr=as_text(bytes(talk.err)),
                )
        if talk.started and talk.pending:
            wait = min(wait, 0.005)
        if chan.eof_received:  # the pipe stays readable now: wait for the exit status
            chan.status_event.wait(wait)
        else:
            select.select([fd], [], [], wait)
    code = chan.recv_exit_status()
    if not talk.started:
        text = as_text(bytes(talk.err)).replace(talk.prompt.decode(), "\n")
        reason = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "")
        raise CommandError(
            f"become {become_user} failed for {display(args)}: {reason or 'sudo refused'}",
            host=host,
            argv=args,
            exit_code=code,
            stderr=text,
            hint="" if password else "set become_password_env if sudo needs a password",
        )
    return code, bytes(talk.out), bytes(talk.err)
