"""``timer install|remove|status``: the files on the controller, and systemctl when it runs.

Everything is written under ``root`` (``/`` on a real install; a directory in tests or when
preparing an image). Systemd is used when it runs (``/run/systemd/system`` exists, as
sd_booted(3) checks), else cron. Files are replaced atomically; the environment file is 0600
from its first byte. Switching scheduler removes the other one's files of the same name.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from agent.errors import AgentError
from agent.jobs.timer import (
    CRON_DIR,
    ENV_DIR,
    LOG_DIR,
    LOGROTATE_DIR,
    MARKER,
    PREFIX,
    UNIT_DIR,
    TimerSpec,
    parse_env,
    render_cron,
    render_env,
    render_logrotate,
    render_service,
    render_timer,
)

Scheduler = Literal["systemd", "cron"]
Runner = Callable[[Sequence[str]], int]


class TimerError(AgentError):
    """A timer's files could not be written, read or removed, or systemctl failed."""


def _run(argv: Sequence[str]) -> int:
    return subprocess.run(list(argv), check=False, timeout=60).returncode


def systemd_running(root: Path) -> bool:
    return root == Path("/") and Path("/run/systemd/system").is_dir()


def choose(wanted: str, root: Path) -> Scheduler:
    """``auto`` is systemd when it runs on this machine, else cron."""
    if wanted == "systemd" or (wanted == "auto" and systemd_running(root)):
        return "systemd"
    return "cron"


def under(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def paths(root: Path, name: str) -> dict[str, Path]:
    return {
        "service": under(root, f"{UNIT_DIR}/{PREFIX}{name}.service"),
        "timer": under(root, f"{UNIT_DIR}/{PREFIX}{name}.timer"),
        "cron": under(root, f"{CRON_DIR}/{PREFIX}{name}"),
        "env": under(root, f"{ENV_DIR}/{name}.env"),
        "log": under(root, f"{LOG_DIR}/{name}.log"),
        "logrotate": under(root, f"{LOGROTATE_DIR}/{PREFIX}{name}"),
    }


def write_file(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to a temporary file created with ``mode``, then rename it over ``path``.

    Raises:
        TimerError: the directory cannot be made or written.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), mode)  # the umask may have taken bits away
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise TimerError(f"cannot write: {err.strerror}", where=str(path)) from err


def _ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(errors="replace")
    except OSError:
        return False


def install(
    spec: TimerSpec,
    env: Mapping[str, str],
    *,
    root: Path,
    scheduler: Scheduler,
    run: Runner = _run,
) -> list[str]:
    """Write the environment file, the units or the cron file; enable the timer.

    ``env`` is merged into the values an existing environment file holds. Returns the lines to
    tell the user (never a secret value).

    Raises:
        TimerError: a file cannot be written, a file of that name is not ours, or systemctl
            failed.
        UsageError: an environment value cannot be written safely.
    """
    where = paths(root, spec.name)
    for key in ("service", "timer", "cron", "logrotate"):
        if where[key].exists() and not _ours(where[key]):
            raise TimerError("exists and was not written by origin-agent", where=str(where[key]))
    values = parse_env(where["env"].read_text()) if where["env"].exists() else {}
    values.update(env)
    where["env"].parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_file(where["env"], render_env(values), 0o600)
    said = [f"environment file {where['env']} (0600): {', '.join(sorted(values)) or 'empty'}"]
    if scheduler == "systemd":
        _remove_files([where["cron"], where["logrotate"]])
        write_file(where["service"], render_service(spec), 0o644)
        write_file(where["timer"], render_timer(spec), 0o644)
        said += [f"wrote {where['service']}", f"wrote {where['timer']}"]
        if systemd_running(root):
            unit = f"{PREFIX}{spec.name}.timer"
            _systemctl(run, ["daemon-reload"])
            _systemctl(run, ["enable", "--now", unit])
            said.append(f"enabled and started {unit}; logs: journalctl -u {PREFIX}{spec.name}")
        else:
            said.append("systemd is not running here: enable it with systemctl on the target")
    else:
        _disable_units(spec.name, root, run)
        where["log"].parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        write_file(where["cron"], render_cron(spec), 0o644)
        write_file(where["logrotate"], render_logrotate(spec), 0o644)
        said += [
            f"wrote {where['cron']}",
            f"logs: {spec.log_file} (rotated by {where['logrotate']})",
        ]
    return said


def _systemctl(run: Runner, args: list[str]) -> None:
    argv = ["systemctl", *args]
    if run(argv) != 0:
        raise TimerError(f"{' '.join(argv)} failed", where="systemctl")


def _disable_units(name: str, root: Path, run: Runner) -> None:
    where = paths(root, name)
    present = [p for p in (where["service"], where["timer"]) if p.exists() and _ours(p)]
    if present and systemd_running(root):
        _systemctl(run, ["disable", "--now", f"{PREFIX}{name}.timer"])
    _remove_files(present)
    if present and systemd_running(root):
        _systemctl(run, ["daemon-reload"])


def _remove_files(files: Sequence[Path]) -> None:
    for path in files:
        if path.exists() and _ours(path):
            path.unlink()


def remove(name: str, *, root: Path, keep_env: bool = False, run: Runner = _run) -> list[str]:
    """Disable and delete a timer's units or cron file (and its environment file).

    Raises:
        TimerError: nothing of that name is installed, or systemctl failed.
    """
    where = paths(root, name)
    found = [p for k, p in where.items() if k not in ("log", "env") and p.exists() and _ours(p)]
    if not found:
        raise TimerError("no timer of this name is installed", where=name)
    _disable_units(name, root, run)
    _remove_files([where["cron"], where["logrotate"]])
    gone = [str(p) for p in found]
    if not keep_env and where["env"].exists():
        where["env"].unlink()
        gone.append(str(where["env"]))
    return [f"removed {p}" for p in gone] + [f"kept the log {where['log']}"] * where["log"].exists()


def installed(root: Path) -> list[tuple[str, Scheduler]]:
    """Names of the timers installed under ``root``, with their scheduler."""
    found: list[tuple[str, Scheduler]] = []
    for path in sorted(under(root, UNIT_DIR).glob(f"{PREFIX}*.timer")):
        if _ours(path):
            found.append((path.name[len(PREFIX) : -len(".timer")], "systemd"))
    for path in sorted(under(root, CRON_DIR).glob(f"{PREFIX}*")):
        if _ours(path):
            found.append((path.name[len(PREFIX) :], "cron"))
    return found


def _last_line(path: Path, prefix: str) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 65536))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return next((line for line in reversed(lines) if line.startswith(prefix)), "")


def status(root: Path, run: Runner = _run) -> list[str]:
    """One block per installed timer: scheduler, schedule, last run as far as we can tell."""
    out: list[str] = []
    for name, scheduler in installed(root):
        where = paths(root, name)
        if scheduler == "systemd":
            text = where["timer"].read_text()
            when = next((ln for ln in text.splitlines() if ln.startswith("OnCalendar=")), "")
            out.append(f"{name}: systemd timer {PREFIX}{name}.timer, {when}")
            if systemd_running(root):
                run(["systemctl", "--no-pager", "list-timers", f"{PREFIX}{name}.timer"])
        else:
            line = where["cron"].read_text().splitlines()[-1]
            out.append(f"{name}: cron {where['cron']}, at '{' '.join(line.split()[:5])}'")
            last = _last_line(where["log"], "== ")
            out.append(f"  last run: {last[3:] if last else 'none logged yet'} ({where['log']})")
        env = where["env"]
        if env.exists() and env.stat().st_mode & 0o077:
            out.append(f"  warning: {env} is open to others (chmod 600 {env})")
    return out or ["no origin-agent timer is installed"]
