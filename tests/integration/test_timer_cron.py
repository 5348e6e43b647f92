"""The cron path of `timer install`, for real: the file it writes is run by a real cron daemon
(and, faster, its exact command line by /bin/sh as cron would), rotating a lab.

The daemon runs in a private mount namespace that sees a copy of /etc holding the installed
files (so nothing on this machine's /etc, /var/log or /run is touched and a cron daemon of
the machine, if any, is not disturbed); the copy's PAM cron session drops pam_loginuid, which
a process without CAP_AUDIT_CONTROL in a container cannot set (stock Debian containers do the
same). It is stopped by its PID at the end of the test.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.cli import main
from agent.jobs import timer_files
from agent.lab import Lab, LabHost
from agent.pki.probe import probe
from tests.receiver import receiver

pytestmark = pytest.mark.integration

RECEIVER = "127.0.0.6"


def _served(host: LabHost) -> str:
    result = probe(host.address, 443, f"{host.name}.lab.test", timeout=5)
    return hashlib.sha256(result.leaf_der).hexdigest()


def _namespace(root: Path, then: str) -> list[str]:
    """argv running shell text ``then`` where /etc, /var/log and cron's spool are root's."""
    (root / "spool").mkdir(exist_ok=True)
    mounts = (
        f"mount --bind {root}/etc /etc && mount --bind {root}/var/log /var/log && "
        f"mount --bind {root}/spool /var/spool/cron/crontabs && mount -t tmpfs tmpfs /run && "
    )
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", mounts + then]


@pytest.fixture
def cron_root(tmp_path: Path) -> Iterator[Path]:
    if shutil.which("cron") is None:
        pytest.fail("cron is not installed; run scripts/setup-system")
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["cp", "-a", "/etc", str(root / "etc")], check=True)
    for path in (root / "etc" / "cron.d").iterdir():
        path.unlink()
    (root / "etc" / "crontab").write_text("")
    pam = root / "etc" / "pam.d" / "cron"
    pam.write_text("".join(ln for ln in pam.read_text().splitlines(True) if "loginuid" not in ln))
    (root / "var" / "log").mkdir(parents=True)
    yield root


def _install(lab: Lab, root: Path, tmp_path: Path, url: str, schedule: str) -> Path:
    code = main(
        ["timer", "install", "labtest", "-i", lab.inventory_path, "--root", str(root)]
        + ["--scheduler", "cron", "--schedule", schedule]
        + ["--randomized-delay", "0", "--renew-before", "400", "--fail-within", "400"]
        + ["--state-dir", str(tmp_path / "state"), "--notify", url]
        + ["--prometheus", str(tmp_path / "oa.prom")]
    )
    assert code == 0
    return timer_files.paths(root, "labtest")["log"]


def _check_ran(
    lab: Lab, before: dict[str, str], log: Path, bodies: list[dict[str, object]]
) -> None:
    text = log.read_text()
    assert "end rotate=0 status=4" in text, text  # 4: every certificate is under 400 days
    assert "rotation: 2 rotated" in text
    assert all(_served(h) != before[h.name] for h in lab.hosts)
    assert len(bodies) == 1  # the webhook URL came from the 0600 environment file
    problems = bodies[0]["origin_agent"]["problems"]  # type: ignore[index]
    assert {p["kind"] for p in problems} == {"expiring"}


def test_cron_runs_the_exact_command_line_of_the_file(
    make_lab: Callable[..., Lab], cron_root: Path, tmp_path: Path
) -> None:
    lab = make_lab(2)
    assert (
        main(["bootstrap", "-i", lab.inventory_path, "--state-dir", str(tmp_path / "state")]) == 0
    )
    before = {h.name: _served(h) for h in lab.hosts}
    with receiver(RECEIVER) as rx:
        log = _install(lab, cron_root, tmp_path, rx.url, "@daily")
        line = timer_files.paths(cron_root, "labtest")["cron"].read_text().splitlines()[-1]
        fields = line.split(" ", 6)
        assert fields[:6] == ["0", "0", "*", "*", "*", "root"]
        env = "env -i SHELL=/bin/sh HOME=/root LOGNAME=root PATH=/usr/bin:/bin"
        done = subprocess.run(
            [*_namespace(cron_root, f'exec {env} /bin/sh -c "$1"'), "sh", fields[6]],
            timeout=120,
        )
        assert done.returncode == 0
        _check_ran(lab, before, log, rx.bodies)


@pytest.mark.slow
def test_a_real_cron_daemon_runs_the_installed_file(
    make_lab: Callable[..., Lab], cron_root: Path, tmp_path: Path
) -> None:
    lab = make_lab(2)
    assert (
        main(["bootstrap", "-i", lab.inventory_path, "--state-dir", str(tmp_path / "state")]) == 0
    )
    before = {h.name: _served(h) for h in lab.hosts}
    with receiver(RECEIVER) as rx:
        log = _install(lab, cron_root, tmp_path, rx.url, "* * * * *")
        daemon = subprocess.Popen(_namespace(cron_root, "exec cron -f"))
        try:
            deadline = time.monotonic() + 150  # the next minute, plus the rotation
            while "end rotate=" not in (log.read_text() if log.exists() else ""):
                assert daemon.poll() is None, "cron exited"
                assert time.monotonic() < deadline, "cron did not run the job"
                time.sleep(1)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(10)
        _check_ran(lab, before, log, rx.bodies)
