"""The error tree users see.

Every error a user can cause derives from :class:`AgentError`; ``str()`` gives one line of the
form ``<where>: <what went wrong>[; <what to do>]``. Evidence travels as attributes, never as
secret text in the message.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourcePos:
    """A position in a user's file (1-based line and column; 0 when unknown)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line and self.col:
            return f"{self.file}:{self.line}:{self.col}"
        if self.line:
            return f"{self.file}:{self.line}"
        return self.file


class AgentError(Exception):
    """Root of every user-facing error. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(
        self, message: str, *, where: str | SourcePos | None = None, hint: str = ""
    ) -> None:
        self.message = " ".join(message.split()) if "\n" in message else message
        self.where = where
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.message
        if self.where is not None and str(self.where):
            text = f"{self.where}: {text}"
        if self.hint:
            text = f"{text}; {self.hint}"
        return text


class UsageError(AgentError, ValueError):
    """Bad command-line usage (exit 2)."""

    exit_code = 2


class ValidationError(AgentError, ValueError):
    """A value bound for a shell, a config file or a path was rejected."""


class InventoryError(AgentError, ValueError):
    """An inventory file or host pattern is wrong."""


class NoHostError(InventoryError):
    """A play's host pattern matches no host of the inventory (not even before ``--limit``)."""


class PlanError(AgentError, ValueError):
    """A plan file is wrong (unknown key, module, type, undefined variable...)."""


class ConnectError(AgentError):
    """A host could not be reached or authenticated (the host is *unreachable*)."""

    def __init__(self, message: str, *, host: str, hint: str = "") -> None:
        self.host = host
        super().__init__(message, where=host, hint=hint)


class HostKeyError(ConnectError):
    """The host presented an unknown or changed host key."""


class CommandError(AgentError):
    """A remote or local command failed; carries argv, exit code and the stderr tail."""

    def __init__(
        self,
        message: str,
        *,
        host: str,
        argv: list[str] | tuple[str, ...] = (),
        exit_code: int = 1,
        stderr: str = "",
        hint: str = "",
    ) -> None:
        self.host = host
        self.argv = tuple(argv)
        self.exit_status = exit_code
        self.stderr_tail = stderr[-2000:]
        super().__init__(message, where=host, hint=hint)


class IssuerError(AgentError):
    """A certificate authority backend failed or gave an answer we reject."""

    def __init__(self, message: str, *, backend: str, hint: str = "") -> None:
        self.backend = backend
        super().__init__(message, where=f"issuer {backend}", hint=hint)


class MissingSecretError(IssuerError):
    """The environment variable or file an issuer config names for a secret is unset or
    absent on this machine: the config is right, the secret is not here (``status`` and
    ``pins`` do without it)."""


class ServerConfigError(AgentError):
    """A web server config test, reload or adapter step failed."""


class VerifyError(AgentError):
    """What the origin serves is not what was deployed or asked for."""


class LabError(AgentError):
    """The local lab could not be started, inspected or stopped."""


class StateError(AgentError):
    """The local state store is unusable."""


class RunLockedError(StateError):
    """Another run holds the controller lock for this inventory and state store (exit 5)."""

    exit_code = 5


class BrokerError(AgentError):
    """The fleet's broker (Redis) is unreachable, was lost mid-run, or is misconfigured
    (exit 6); the URL's password is never shown."""

    exit_code = 6
