"""Scheduled runs: what ``origin-agent timer install`` writes, as text (no I/O here).

One schedule, given the cron way (five fields or @hourly/@daily/@weekly), becomes either a
systemd service + timer (``OnCalendar`` with every field spelled out, ``RandomizedDelaySec``,
``Persistent=true``) or one ``/etc/cron.d`` file whose line sleeps a random delay first. Both
run ``rotate`` then ``status --fail-within`` for one inventory, read their secrets from an
environment file (0600; only values both systemd and sh read the same way are accepted) and log
where the system keeps logs: the journal, or ``/var/log/origin-agent/NAME.log`` for cron.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agent.errors import UsageError

PREFIX = "origin-agent-"
ENV_DIR = "/etc/origin-agent"
LOG_DIR = "/var/log/origin-agent"
UNIT_DIR = "/etc/systemd/system"
CRON_DIR = "/etc/cron.d"
LOGROTATE_DIR = "/etc/logrotate.d"
NOTIFY_ENV = "ORIGIN_AGENT_NOTIFY"
MARKER = "# written by origin-agent timer install; rerun it to change, timer remove to delete"

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")  # cron.d ignores names with dots
_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*$")  # no %, space or quote: safe in cron and units
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_VALUE = re.compile(r"^[\x20-\x7e]*$")
_ENV_FORBIDDEN = set("'\"\\$`")
_KEYWORDS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0"}
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12))
_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


@dataclass(frozen=True)
class TimerSpec:
    """A scheduled rotation of one inventory (paths absolute, already checked)."""

    name: str
    executable: str
    inventories: tuple[str, ...]
    state_dir: str
    schedule: str = "17 3 * * *"
    randomized_delay: int = 3600
    fail_within: int = 14
    renew_before: int | None = None
    prometheus: str | None = None
    wait: int = 3600
    user: str = "root"

    @property
    def env_file(self) -> str:
        return f"{ENV_DIR}/{self.name}.env"

    @property
    def log_file(self) -> str:
        return f"{LOG_DIR}/{self.name}.log"


def check_name(name: str) -> str:
    """Raises: UsageError: not 1-40 of a-z, 0-9 and '-' (cron skips files with dots)."""
    if not _NAME.match(name):
        raise UsageError(
            f"invalid timer name {name!r}", where="--name", hint="use 1-40 of a-z, 0-9 and '-'"
        )
    return name


def check_user(user: str) -> str:
    """Raises: UsageError: not a plain user name."""
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", user):
        raise UsageError(f"invalid user name {user!r}", where="--user")
    return user


def check_unit_path(path: str, where: str) -> str:
    """Raises: UsageError: not absolute or holding characters a unit or cron line would
    change (space, quote, %, newline)."""
    if not _PATH.match(path) or "/../" in path + "/":
        raise UsageError(
            f"path {path!r} must be absolute and made of A-Z a-z 0-9 . _ / + -", where=where
        )
    return path


def _expand(text: str, low: int, high: int, what: str) -> list[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            start, end = int(a), int(b)
        else:
            start = end = int(body)
            if step_text:  # N/STEP: from N to the end, as cronie and systemd read it
                end = high
        step = int(step_text) if step_text else 1
        if not (low <= start <= end <= high) or step < 1:
            raise ValueError(f"{what} {part!r} outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return sorted(values)


@dataclass(frozen=True)
class Schedule:
    """A cron schedule with every field expanded; ``None`` is "every" (``*``)."""

    minute: tuple[int, ...] | None
    hour: tuple[int, ...] | None
    dom: tuple[int, ...] | None
    month: tuple[int, ...] | None
    dow: tuple[int, ...] | None  # 0 = Sunday


def parse_schedule(schedule: str) -> Schedule:
    """Five cron fields (numbers, ``*``, lists, ranges, steps) or @hourly/@daily/@weekly.

    Raises:
        UsageError: not five fields, a value out of range, or both day of month and day of
            week restricted (cron fires on either; systemd would need both).
    """
    fields = _KEYWORDS.get(schedule.strip(), schedule).split()
    try:
        if len(fields) != 5 or not all(re.fullmatch(r"[0-9*,/-]+", f) for f in fields):
            raise ValueError("expected five fields (minute hour day month weekday) or @daily")
        if fields[2] != "*" and fields[4] != "*":
            raise ValueError("give a day of month or a day of week, not both")
        values = [
            None if f == "*" else tuple(_expand(f, lo, hi, what))
            for f, (what, lo, hi) in zip(fields, _FIELDS, strict=False)
        ]
        dow = (
            None
            if fields[4] == "*"
            else tuple(sorted({d % 7 for d in _expand(fields[4], 0, 7, "day of week")}))
        )
    except ValueError as err:
        raise UsageError(f"schedule {schedule!r}: {err}", where="--schedule") from None
    return Schedule(values[0], values[1], values[2], values[3], dow)


def _spell(values: tuple[int, ...] | None, width: int = 2) -> str:
    return "*" if values is None else ",".join(f"{v:0{width}d}" for v in values)


def on_calendar(schedule: str) -> str:
    """The systemd ``OnCalendar`` value firing when cron fires on ``schedule`` (every field
    spelled out as a list, which both read alike)."""
    s = parse_schedule(schedule)
    days = "" if s.dow is None else ",".join(_DAYS[d] for d in s.dow) + " "
    return f"{days}*-{_spell(s.month)}-{_spell(s.dom)} {_spell(s.hour)}:{_spell(s.minute)}:00"


def cron_schedule(schedule: str) -> str:
    """The five cron fields, every one spelled out as a list (no dialect's extensions)."""
    s = parse_schedule(schedule)
    return " ".join(_spell(v, 1) for v in (s.minute, s.hour, s.dom, s.month, s.dow))


def commands(spec: TimerSpec) -> tuple[list[str], list[str]]:
    """The two argv a scheduled run executes: rotate, then status --fail-within."""
    common = [a for inv in spec.inventories for a in ("-i", inv)]
    common += ["--state-dir", spec.state_dir]
    rotate = [spec.executable, "rotate", *common, "--wait", str(spec.wait)]
    rotate += ["--fail-within", str(spec.fail_within)]
    if spec.renew_before is not None:
        rotate += ["--renew-before", str(spec.renew_before)]
    status = [spec.executable, "status", *common, "--fail-within", str(spec.fail_within)]
    if spec.prometheus:
        rotate += ["--prometheus", spec.prometheus]
        status += ["--prometheus", spec.prometheus]
    return rotate, status


def render_env(values: Mapping[str, str]) -> str:
    """The environment file: ``KEY='value'`` lines that systemd and sh read alike.

    Raises:
        UsageError: a key that is not a variable name, or a value with a quote, backslash,
            dollar, backquote or a character outside printable ASCII (named, never shown).
    """
    lines = [MARKER]
    for key, value in values.items():
        if not _ENV_KEY.match(key):
            raise UsageError(f"invalid variable name {key!r}", where="--env")
        if not _ENV_VALUE.match(value) or _ENV_FORBIDDEN & set(value):
            raise UsageError(
                f"the value of {key} has a character an environment file cannot hold safely",
                where="--env",
                hint="quotes, backslash, $, ` and non-printable characters are refused",
            )
        lines.append(f"{key}='{value}'")
    return "\n".join(lines) + "\n"


def _systemd_argv(argv: Sequence[str]) -> str:
    # checked paths and integers only; systemd splits like a shell and expands % specifiers
    return " ".join(shlex.quote(a) for a in argv).replace("%", "%%")


def render_service(spec: TimerSpec) -> str:
    rotate, status = commands(spec)
    user = "" if spec.user == "root" else f"User={spec.user}\n"
    return (
        f"{MARKER}\n[Unit]\nDescription=origin-agent certificate rotation ({spec.name})\n"
        "Wants=network-online.target\nAfter=network-online.target\n\n"
        "[Service]\nType=oneshot\n"
        f"{user}EnvironmentFile={spec.env_file}\n"
        f"ExecStart={_systemd_argv(rotate)}\n"
        "# runs after rotate whatever it returned; exit 4 (a certificate expiring within\n"
        "# --fail-within days) marks the unit failed\n"
        f"ExecStopPost={_systemd_argv(status)}\n"
        f"TimeoutStartSec={spec.wait + 7200}\n"
        "# ExecStopPost counts against the stop timeout: room for status on a large fleet\n"
        "TimeoutStopSec=1800\nNoNewPrivileges=yes\nPrivateTmp=yes\n"
    )


def render_timer(spec: TimerSpec) -> str:
    return (
        f"{MARKER}\n[Unit]\nDescription=origin-agent certificate rotation ({spec.name}), scheduled\n\n"
        f"[Timer]\nOnCalendar={on_calendar(spec.schedule)}\n"
        f"RandomizedDelaySec={spec.randomized_delay}\nPersistent=true\n"
        f"Unit={PREFIX}{spec.name}.service\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )


def cron_command(spec: TimerSpec) -> str:
    """The command part of the cron line (run by cron with /bin/sh -c)."""
    rotate, status = commands(spec)
    delay = f"sleep $(shuf -i 0-{spec.randomized_delay} -n 1) && " if spec.randomized_delay else ""
    stamp = "$(date -u -Iseconds)"
    return (
        f"set -a && . {spec.env_file} && set +a && {delay}"
        f'{{ echo "== {stamp} start"; {shlex.join(rotate)}; r=$?; {shlex.join(status)}; s=$?; '
        f'echo "== {stamp} end rotate=$r status=$s"; }} >> {spec.log_file} 2>&1'
    )


def render_cron(spec: TimerSpec) -> str:
    line = f"{cron_schedule(spec.schedule)} {spec.user} {cron_command(spec)}"
    assert "%" not in line and "\n" not in line  # cron turns % into a newline
    return (
        f"{MARKER}\nSHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        f"{line}\n"
    )


def render_logrotate(spec: TimerSpec) -> str:
    """Keeps the cron path's log from growing forever (eight weeks, compressed)."""
    return (
        f"{MARKER}\n{spec.log_file} {{\n    weekly\n    rotate 8\n    compress\n"
        "    delaycompress\n    missingok\n    notifempty\n    create 0640 root adm\n}\n"
    )


def parse_env(text: str) -> dict[str, str]:
    """The values of an environment file this module wrote (other lines are skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and _ENV_KEY.match(key) and len(value) >= 2 and value[0] == value[-1] == "'":
            out[key] = value[1:-1]
    return out
