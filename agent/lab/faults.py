"""Reversible faults to inject into a lab host, for the reliability tests and for operators
who want to see what a rotation does when an origin misbehaves.

Each fault has ``inject(host, **params)`` and ``undo(host, **params)``; both act on that host
only. ``origin-agent lab fault HOST FAULT [--undo]`` runs them from the command line.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from agent.errors import LabError
from agent.lab import files
from agent.lab.host import LabHost

CERT_ROOT = "/etc/ssl/origin-agent"
ACME_WEBROOT = "/var/www/acme"


def _run(host: LabHost, argv: list[str]) -> None:
    result = host.exec(argv)
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise LabError(f"{' '.join(argv)} failed: {' '.join(tail)}", where=host.name)


def _sshd_required(host: LabHost) -> int:
    pid = host.sshd_pid()
    if not pid:
        raise LabError("sshd is not running", where=host.name)
    return pid


def stop_sshd(host: LabHost) -> None:
    host.stop_sshd()


def start_sshd(host: LabHost) -> None:
    if not host.sshd_pid():
        host.start_sshd()


def freeze_sshd(host: LabHost) -> None:
    """SIGSTOP the listener: TCP connections still open (the kernel's backlog accepts them)
    but no SSH banner ever comes."""
    os.kill(_sshd_required(host), signal.SIGSTOP)


def thaw_sshd(host: LabHost) -> None:
    os.kill(_sshd_required(host), signal.SIGCONT)


HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"


def change_host_key(host: LabHost) -> None:
    """Give the host a new host key (the old one is kept beside it for ``undo``)."""
    key, pub = files.ed25519_keypair()
    _run(
        host,
        [
            "sh",
            "-c",
            f"test -e {HOST_KEY}.lab-saved || "
            f"{{ mv {HOST_KEY} {HOST_KEY}.lab-saved && mv {HOST_KEY}.pub {HOST_KEY}.pub.lab-saved; }}",
        ],
    )
    result = host.exec(
        ["sh", "-c", f"umask 077; cat > {HOST_KEY}.new && mv {HOST_KEY}.new {HOST_KEY}"], input=key
    )
    if result.returncode != 0:
        raise LabError("could not write the new host key", where=host.name)
    host.exec(["sh", "-c", f"cat > {HOST_KEY}.pub"], input=(pub + "\n").encode())
    _restart_sshd(host)


def restore_host_key(host: LabHost) -> None:
    if host.exec(["test", "-e", f"{HOST_KEY}.lab-saved"]).returncode == 0:
        _run(host, ["mv", f"{HOST_KEY}.lab-saved", HOST_KEY])
        _run(host, ["mv", f"{HOST_KEY}.pub.lab-saved", f"{HOST_KEY}.pub"])
        _restart_sshd(host)


def _restart_sshd(host: LabHost) -> None:
    host.stop_sshd()
    host.start_sshd()


def _conf_dir(host: LabHost) -> str:
    return "/etc/nginx/conf.d" if host.server == "nginx" else "/etc/apache2/conf-enabled"


def break_web_config(host: LabHost) -> None:
    """Add a config file the server's config test rejects."""
    path = f"{_conf_dir(host)}/zz-lab-broken.conf"
    _run(host, ["sh", "-c", f"echo 'this is not a directive {{' > {path}"])


def fix_web_config(host: LabHost) -> None:
    _run(host, ["rm", "-f", f"{_conf_dir(host)}/zz-lab-broken.conf"])


def stop_web(host: LabHost) -> None:
    host.stop_server()


def start_web(host: LabHost) -> None:
    if not host.server_pid():
        host.start_server()


def cert_dir_readonly(host: LabHost, path: str = CERT_ROOT) -> None:
    """Make the certificate directory read-only inside the host (a read-only bind mount)."""
    _run(host, ["mkdir", "-p", path])
    _run(host, ["mount", "--bind", path, path])
    _run(host, ["mount", "-o", "remount,ro,bind", path])


def cert_dir_writable(host: LabHost, path: str = CERT_ROOT) -> None:
    _run(host, ["umount", path])


def fill_cert_dir(host: LabHost, path: str = CERT_ROOT) -> None:
    """Mount a full tiny tmpfs over the certificate directory (inside this host only), with
    the current contents copied in first so the server still finds its files."""
    stage = "/run/lab-fill"
    _run(host, ["mkdir", "-p", path, stage])
    _run(host, ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", stage])
    _run(host, ["cp", "-a", f"{path}/.", stage])
    _run(host, ["sh", "-c", f"dd if=/dev/zero of={stage}/.lab-fill bs=4k 2>/dev/null; true"])
    _run(host, ["mount", "--move", stage, path])


def unfill_cert_dir(host: LabHost, path: str = CERT_ROOT) -> None:
    _run(host, ["umount", path])


def acme_forbidden(host: LabHost, webroot: str = ACME_WEBROOT) -> None:
    """Make the ACME challenge path answer 403 (the web server cannot read the webroot)."""
    _run(host, ["mkdir", "-p", f"{webroot}/.well-known/acme-challenge"])
    _run(host, ["chmod", "000", f"{webroot}/.well-known/acme-challenge"])


def acme_allowed(host: LabHost, webroot: str = ACME_WEBROOT) -> None:
    _run(host, ["chmod", "755", f"{webroot}/.well-known/acme-challenge"])


@dataclass(frozen=True)
class Fault:
    name: str
    help: str
    inject: Callable[[LabHost], None]
    undo: Callable[[LabHost], None]


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("sshd-stopped", "stop the host's sshd (host unreachable)", stop_sshd, start_sshd),
        Fault("sshd-frozen", "TCP opens but no SSH banner ever comes", freeze_sshd, thaw_sshd),
        Fault(
            "host-key-changed",
            "the host presents a new host key",
            change_host_key,
            restore_host_key,
        ),
        Fault(
            "web-config-broken",
            "the web server's config test fails",
            break_web_config,
            fix_web_config,
        ),
        Fault("web-stopped", "the web server is not running", stop_web, start_web),
        Fault(
            "cert-dir-readonly", f"{CERT_ROOT} is read-only", cert_dir_readonly, cert_dir_writable
        ),
        Fault(
            "cert-dir-full", f"{CERT_ROOT} is on a full filesystem", fill_cert_dir, unfill_cert_dir
        ),
        Fault(
            "acme-forbidden", "the ACME challenge path answers 403", acme_forbidden, acme_allowed
        ),
    )
}


def get(name: str) -> Fault:
    try:
        return FAULTS[name]
    except KeyError:
        raise LabError(
            f"unknown fault {name!r}", where="lab", hint=f"choose one of {', '.join(FAULTS)}"
        ) from None
