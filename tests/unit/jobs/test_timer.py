"""Scheduled runs: schedules read alike by cron and systemd, unit files systemd-analyze accepts,
environment files sh reads as written, and install/remove/status in a temporary root."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.errors import UsageError
from agent.jobs import timer, timer_files
from agent.jobs.timer import TimerSpec, on_calendar, parse_schedule, render_env

AGENT = str(Path(sys.executable).parent / "origin-agent")


def _spec(tmp_path: Path, **kw: object) -> TimerSpec:
    base: dict[str, object] = dict(
        name="prod",
        executable=AGENT,
        inventories=(str(tmp_path / "inv.yml"),),
        state_dir=str(tmp_path / "state"),
        prometheus=str(tmp_path / "oa.prom"),
    )
    base.update(kw)
    return TimerSpec(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cron", "calendar"),
    [
        ("17 3 * * *", "*-*-* 03:17:00"),
        ("@daily", "*-*-* 00:00:00"),
        ("@hourly", "*-*-* *:00:00"),
        ("*/15 * * * *", "*-*-* *:00,15,30,45:00"),
        ("0 0-23/6 1,15 * *", "*-*-01,15 00,06,12,18:00:00"),
        ("30 2 * 1-3 0", "Sun *-01,02,03-* 02:30:00"),
        ("5/20 4 * * 1-5", "Mon,Tue,Wed,Thu,Fri *-*-* 04:05,25,45:00"),
        ("0 12 * * 7", "Sun *-*-* 12:00:00"),
    ],
)
def test_cron_schedule_becomes_the_same_calendar(cron: str, calendar: str) -> None:
    assert on_calendar(cron) == calendar


def _cron_fires(schedule: str, start: datetime, count: int) -> list[datetime]:
    s = parse_schedule(schedule)
    out, t = [], start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(60 * 24 * 400):  # a year and a bit, minute by minute
        if (
            (s.minute is None or t.minute in s.minute)
            and (s.hour is None or t.hour in s.hour)
            and (s.dom is None or t.day in s.dom)
            and (s.month is None or t.month in s.month)
            and (s.dow is None or (t.isoweekday() % 7) in s.dow)
        ):
            out.append(t)
            if len(out) == count:
                break
        t += timedelta(minutes=1)
    return out


@pytest.mark.parametrize("cron", ["17 3 * * *", "*/20 */7 * * *", "30 2 * 2,3 0", "0 0 31 * *"])
def test_systemd_fires_when_cron_would(cron: str) -> None:
    out = subprocess.run(
        ["systemd-analyze", "calendar", "--iterations=4", on_calendar(cron)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "UTC"},
    ).stdout
    now = datetime.now(UTC)
    elapses = [
        datetime.strptime(m, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        for m in re.findall(r"(?:Next elapse|Iter\. #\d): \w+ (\S+ \S+) UTC", out)
    ]
    assert len(elapses) == 4
    assert elapses == _cron_fires(cron, now, 4)


@pytest.mark.parametrize(
    "bad", ["17 3 * *", "60 * * * *", "0 0 1 * 1", "0 0 * * 8", "0 0 * 13 *", "x * * * *"]
)
def test_bad_schedules_are_one_line_errors(bad: str) -> None:
    with pytest.raises(UsageError) as caught:
        on_calendar(bad)
    assert str(caught.value).startswith(f"--schedule: schedule {bad!r}:")


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    spec = _spec(tmp_path, schedule="*/30 1-5 * * 1-5", user="www-data")
    (tmp_path / "u").mkdir()
    service = tmp_path / "u" / "origin-agent-prod.service"
    unit = tmp_path / "u" / "origin-agent-prod.timer"
    service.write_text(timer.render_service(spec))
    unit.write_text(timer.render_timer(spec))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit), str(service)], capture_output=True, text=True
    )
    assert (done.returncode, done.stderr) == (0, "")
    text = unit.read_text()
    assert "RandomizedDelaySec=3600\n" in text and "Persistent=true\n" in text
    assert "OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 01,02,03,04,05:00,30:00\n" in text
    body = service.read_text()
    assert "EnvironmentFile=/etc/origin-agent/prod.env\n" in body and "User=www-data\n" in body
    assert f"ExecStart={AGENT} rotate -i {tmp_path}/inv.yml" in body
    assert f"ExecStopPost={AGENT} status -i {tmp_path}/inv.yml" in body
    assert "TimeoutStopSec=1800\n" in body


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    spec = _spec(tmp_path, executable="/nonexistent/origin-agent")
    service = tmp_path / "origin-agent-prod.service"
    service.write_text(timer.render_service(spec))
    done = subprocess.run(["systemd-analyze", "verify", str(service)], capture_output=True)
    assert done.returncode != 0  # so the test above would see a broken unit


def test_env_file_is_read_by_sh_as_written(tmp_path: Path) -> None:
    value = "https://h.example/x?a=1&b=2;c|d<e>f (g) #h ~i *j"
    path = tmp_path / "e.env"
    path.write_text(render_env({"ORIGIN_AGENT_NOTIFY": value, "CF_TOKEN": "t0k=="}))
    got = subprocess.run(
        ["sh", "-c", f'set -a; . {path}; printf "%s|%s" "$ORIGIN_AGENT_NOTIFY" "$CF_TOKEN"'],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout
    assert got == f"{value}|t0k=="
    assert timer.parse_env(path.read_text()) == {"ORIGIN_AGENT_NOTIFY": value, "CF_TOKEN": "t0k=="}


@pytest.mark.parametrize("value", ["it's", 'a"b', "a\\b", "$HOME", "`id`", "a\nb", "é"])
def test_env_values_that_sh_and_systemd_could_read_differently_are_refused(value: str) -> None:
    with pytest.raises(UsageError) as caught:
        render_env({"SECRET": value})
    assert value not in str(caught.value) and "SECRET" in str(caught.value)


def test_cron_line_has_no_percent_and_logs_to_var_log(tmp_path: Path) -> None:
    text = timer.render_cron(_spec(tmp_path, schedule="*/10 * * * *", randomized_delay=60))
    line = text.splitlines()[-1]
    assert line.startswith("0,10,20,30,40,50 * * * * root set -a && . /etc/origin-agent/prod.env")
    assert "sleep $(shuf -i 0-60 -n 1) && " in line
    assert line.endswith(">> /var/log/origin-agent/prod.log 2>&1")
    assert "%" not in text


@pytest.mark.parametrize(
    ("check", "value"),
    [(timer.check_name, "a.b"), (timer.check_name, "A"), (timer.check_unit_path, "rel/x")]
    + [
        (timer.check_unit_path, "/a b"),
        (timer.check_unit_path, "/a%b"),
        (timer.check_user, "root;x"),
    ],
)
def test_values_bound_for_units_and_cron_are_checked(check: object, value: str) -> None:
    with pytest.raises(UsageError):
        check(value, "x") if check is timer.check_unit_path else check(value)  # type: ignore[operator]


def test_install_switch_and_remove_in_a_temporary_root(tmp_path: Path) -> None:
    root, spec = tmp_path / "root", _spec(tmp_path)
    where = timer_files.paths(root, "prod")
    old = os.umask(0)
    try:
        timer_files.install(spec, {"CF_TOKEN": "s3cret"}, root=root, scheduler="cron")
    finally:
        os.umask(old)
    assert where["env"].stat().st_mode & 0o777 == 0o600
    assert where["env"].parent.stat().st_mode & 0o777 == 0o700
    assert where["cron"].stat().st_mode & 0o777 == 0o644
    assert os.listdir(where["cron"].parent) == ["origin-agent-prod"]  # no temporary left
    said = timer_files.install(spec, {"OTHER": "x"}, root=root, scheduler="systemd")
    assert not any("s3cret" in line for line in said)
    assert not where["cron"].exists() and where["timer"].exists()
    assert timer.parse_env(where["env"].read_text()) == {"CF_TOKEN": "s3cret", "OTHER": "x"}
    assert timer_files.installed(root) == [("prod", "systemd")]
    assert timer_files.status(root)[0].startswith("prod: systemd timer origin-agent-prod.timer")
    timer_files.remove("prod", root=root)
    assert not where["timer"].exists() and not where["service"].exists()
    assert not where["env"].exists()
    assert timer_files.status(root) == ["no origin-agent timer is installed"]


def test_install_refuses_to_overwrite_a_file_it_did_not_write(tmp_path: Path) -> None:
    root = tmp_path / "root"
    where = timer_files.paths(root, "prod")
    where["cron"].parent.mkdir(parents=True)
    where["cron"].write_text("0 * * * * root /usr/local/bin/backup\n")
    with pytest.raises(timer_files.TimerError, match="not written by origin-agent"):
        timer_files.install(_spec(tmp_path), {}, root=root, scheduler="cron")
    assert where["cron"].read_text() == "0 * * * * root /usr/local/bin/backup\n"


def test_cron_status_shows_the_last_logged_run(tmp_path: Path) -> None:
    root = tmp_path / "root"
    timer_files.install(_spec(tmp_path), {}, root=root, scheduler="cron")
    where = timer_files.paths(root, "prod")
    where["log"].write_text(
        "== 2026-12-04T03:17:00+00:00 start\nrotation: ...\n"
        "== 2026-12-04T03:17:09+00:00 end rotate=0 status=4\n"
    )
    lines = timer_files.status(root)
    assert lines[0] == f"prod: cron {where['cron']}, at '17 3 * * *'"
    assert lines[1].startswith("  last run: 2026-12-04T03:17:09+00:00 end rotate=0 status=4")


def test_cli_install_status_remove(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts: {}\n")
    root = tmp_path / "root"
    monkeypatch.setenv("CF_API_TOKEN", "tok-secret-1")
    base = ["timer", "install", "prod", "-i", str(inv), "--root", str(root)]
    assert main([*base, "--env", "CF_API_TOKEN", "--notify", "https://hooks.example/T/x"]) == 0
    out = capsys.readouterr().out
    assert "tok-secret-1" not in out and "hooks.example" not in out
    cron = (root / "etc/cron.d/origin-agent-prod").read_text()
    assert "hooks.example" not in cron and "tok-secret-1" not in cron  # only in the 0600 file
    assert main([*base, "--scheduler", "systemd"]) == 0
    units = root / "etc/systemd/system"
    done = subprocess.run(
        ["systemd-analyze", "verify", *map(str, sorted(units.iterdir()))],
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stderr) == (0, "")
    capsys.readouterr()
    assert main(["timer", "status", "--root", str(root)]) == 0
    assert capsys.readouterr().out.startswith("prod: systemd timer origin-agent-prod.timer, ")
    assert main(["timer", "remove", "prod", "--root", str(root)]) == 0
    assert list(units.iterdir()) == [] and not (root / "etc/origin-agent/prod.env").exists()
    assert main(["timer", "remove", "prod", "--root", str(root)]) == 1
    assert capsys.readouterr().err == "origin-agent: prod: no timer of this name is installed\n"


def test_cli_rejects_a_bad_schedule_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts: {}\n")
    code = main(
        ["timer", "install", "-i", str(inv), "--root", str(tmp_path / "r")]
        + ["--schedule", "0 0 1 * 1"]
    )
    assert code == 2 and not (tmp_path / "r").exists()
    assert "give a day of month or a day of week, not both" in capsys.readouterr().err


def test_cron_log_is_rotated_by_a_config_logrotate_accepts(tmp_path: Path) -> None:
    root = tmp_path / "root"
    timer_files.install(_spec(tmp_path), {}, root=root, scheduler="cron")
    where = timer_files.paths(root, "prod")
    conf = where["logrotate"].read_text()
    assert conf.startswith(timer.MARKER) and "/var/log/origin-agent/prod.log {" in conf
    done = subprocess.run(
        ["logrotate", "-d", "--state", str(tmp_path / "lr.state"), str(where["logrotate"])],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "error" not in done.stderr.lower(), done.stderr
    timer_files.remove("prod", root=root)
    assert not where["logrotate"].exists() and not where["cron"].exists()
