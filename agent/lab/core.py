"""A lab of local origin hosts on one Linux machine.

Host K is ``originK`` at 127.0.1.K. Each host lives in its own mount (and UTS) namespace, held
open by a ``sleep`` process: /etc, /var and /usr are overlayfs copies-on-write of the machine's
(one upper directory per host), /run is a private tmpfs, /tmp and /root are private
directories. Inside it run the host's own sshd (127.0.1.K:22, root by key only) and its own
nginx or apache2 serving plain HTTP on 127.0.1.K:80. All hosts share the machine's network
namespace, so every server binds its host's address explicitly.

Everything the lab starts is recorded in ``lab.json`` (holder PID, its start time and mount
namespace); ``down`` stops exactly the processes living in those namespaces and removes the lab
directory. Must run as root (namespaces and overlayfs).

This module holds the lab as a whole (start, record, inventory, stop); one host is
:mod:`agent.lab.host`, its files :mod:`agent.lab.rootfs` and :mod:`agent.lab.files`, and the
processes (stopping by PID, the reaper of adopted daemons) :mod:`agent.lab.procs`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from agent.errors import LabError
from agent.lab import files, procs
from agent.lab.host import LabHost, Server
from agent.lab.rootfs import prepare_host

NET_PREFIX = "127.0.1."
MAX_HOSTS = 250
REQUIRED = {
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "sleep": "coreutils",
    "/usr/sbin/sshd": "openssh-server",
}
SERVER_BINARIES = {
    "nginx": ("/usr/sbin/nginx", "nginx"),
    "apache": ("/usr/sbin/apache2ctl", "apache2"),
}
_HOLDER_SCRIPT = r"""
set -e
H="$1"; NAME="$2"
cd "$H"  # relative sources below stay valid after /tmp or /root is mounted over an ancestor
for d in etc var usr; do
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$H/upper/$d,workdir=$H/work/$d" "/$d"
done
mount -t tmpfs -o mode=0755,size=64m tmpfs /run
mkdir -p /run/sshd /run/lock
chmod 0755 /run/sshd
chmod 1777 /run/lock
mount --bind ./tmp /tmp
mount --bind ./root /root
hostname "$NAME"
echo "ready $$"
exec sleep infinity </dev/null >/dev/null 2>&1
"""


def default_dir() -> Path:
    """``$ORIGIN_AGENT_LAB_DIR``, else ``~/.local/state/origin-agent-lab`` (under /root, which
    every host replaces with its own, so hosts cannot see the lab's keys)."""
    env = os.environ.get("ORIGIN_AGENT_LAB_DIR")
    return Path(env) if env else Path.home() / ".local/state/origin-agent-lab"


class Lab:
    """A set of lab hosts sharing a client key and a known_hosts file."""

    def __init__(self, dir: Path, hosts: list[LabHost]) -> None:
        self.dir = dir
        self.hosts = hosts

    # Paths -----------------------------------------------------------------------------
    @property
    def key_file(self) -> str:
        return str(self.dir / "id_ed25519")

    @property
    def known_hosts(self) -> str:
        return str(self.dir / "known_hosts")

    @property
    def ca_dir(self) -> str:
        """The lab's own private origin CA (the inventory's default issuer)."""
        return str(self.dir / "ca")

    @property
    def inventory_path(self) -> str:
        return str(self.dir / "inventory.yml")

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise LabError(f"no lab host named {name!r}")

    # Lifecycle -------------------------------------------------------------------------
    @classmethod
    def load(cls, dir: Path | None = None) -> Lab:
        """The lab recorded in ``dir``.

        Raises:
            LabError: no lab is up there.
        """
        dir = dir or default_dir()
        try:
            data = json.loads((dir / "lab.json").read_text())
        except FileNotFoundError:
            raise LabError(
                "no lab is up", where=str(dir), hint="start one with 'origin-agent lab up N'"
            ) from None
        except (OSError, ValueError) as err:
            raise LabError(f"unreadable lab record: {err}", where=str(dir / "lab.json")) from err
        return cls(dir, [LabHost(**h) for h in data["hosts"]])

    @classmethod
    def up(
        cls,
        count: int,
        *,
        apache: int = 0,
        bare: int = 0,
        dir: Path | None = None,
        first: int = 1,
    ) -> Lab:
        """Start ``count`` hosts: the last ``apache`` run apache2, the ``bare`` ones before those
        run no web server, the rest nginx.

        Raises:
            LabError: not root, a missing package, an address already taken, a lab already up.
        """
        dir = dir or default_dir()
        _preflight(count, apache, bare, first)
        procs.become_subreaper()
        if (dir / "lab.json").exists():
            raise LabError(
                "a lab is already up", where=str(dir), hint="run 'origin-agent lab down' first"
            )
        addresses = [f"{NET_PREFIX}{first + i}" for i in range(count)]
        _check_free(addresses)
        dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(dir, 0o700)
        nginx: list[Server] = ["nginx"]
        none: list[Server] = ["none"]
        apache2: list[Server] = ["apache"]
        kinds = nginx * (count - apache - bare) + none * bare + apache2 * apache
        hosts = [
            LabHost(
                name=f"origin{first + i}",
                index=first + i,
                address=addresses[i],
                server=kinds[i],
                dir=str(dir / "hosts" / f"origin{first + i}"),
            )
            for i in range(count)
        ]
        lab = cls(dir, hosts)
        procs.track(lab, lambda: [p for h in lab.hosts for p in h.pid_files()])
        try:
            lab._prepare()
            with ThreadPoolExecutor(max_workers=min(16, count)) as pool:
                list(pool.map(lab._start_host, hosts))
            lab._save()
            lab._write_inventory()
            lab._wait_ready()
        except BaseException:
            lab._save()
            lab.down()
            raise
        return lab

    def _prepare(self) -> None:
        key, pub = files.ed25519_keypair()
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        Path(self.key_file + ".pub").write_text(pub + "\n")
        stock_nginx = (
            Path("/etc/nginx/nginx.conf").read_text()
            if Path("/etc/nginx/nginx.conf").exists()
            else ""
        )
        dpkg_status = Path("/var/lib/dpkg/status").read_text()
        names = [(h.name, h.address) for h in self.hosts]
        known: list[str] = []
        for host in self.hosts:
            known.append(prepare_host(host, pub, names, stock_nginx, dpkg_status))
        Path(self.known_hosts).write_text("".join(known))
        from agent.pki.issuers.localca import init_ca

        init_ca(self.ca_dir, name="origin-agent lab CA")

    def _start_host(self, host: LabHost) -> None:
        proc = subprocess.Popen(
            [
                "setsid",
                "--fork",
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                _HOLDER_SCRIPT,
                "sh",
                host.dir,
                host.name,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline().split()
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace").strip() if not line else ""
        proc.stderr.close()
        proc.wait()
        if len(line) != 2 or line[0] != b"ready":
            raise LabError(
                f"could not create the host's namespace: {err or 'no output'}", where=host.name
            )
        pid = int(line[1])
        host.holder_pid = pid
        host.holder_start = procs.start_time(pid) or 0
        host.mnt_ns = procs.mnt_ns(pid) or 0
        for step in (host.start_sshd, host.start_server):
            try:
                step(0)
            except subprocess.CalledProcessError as err:
                tail = (err.stderr or b"").decode(errors="replace").strip().splitlines()[-1:]
                raise LabError(
                    f"{' '.join(err.cmd[6:])} failed: {' '.join(tail)}", where=host.name
                ) from err

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        unsettled = [h for h in self.hosts if h.server != "none"]
        while unsettled and time.monotonic() < deadline:
            unsettled = [h for h in unsettled if not h.server_settled()]
            if unsettled:
                time.sleep(0.02)
        pending = [(h, p) for h in self.hosts for p in ((22, 80) if h.server != "none" else (22,))]
        while pending and time.monotonic() < deadline:
            still = []
            for host, port in pending:
                try:
                    socket.create_connection((host.address, port), timeout=1).close()
                except OSError:
                    still.append((host, port))
            pending = still
            if pending:
                time.sleep(0.05)
        if pending:
            host, port = pending[0]
            raise LabError(f"nothing answers on {host.address}:{port}", where=host.name)

    def _save(self) -> None:
        data = {"hosts": [asdict(h) for h in self.hosts]}
        tmp = self.dir / "lab.json.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        tmp.rename(self.dir / "lab.json")

    def inventory_text(self) -> str:
        return _inventory_yaml(self)

    def _write_inventory(self) -> None:
        Path(self.inventory_path).write_text(self.inventory_text())

    def down(self) -> int:
        """Stop every process in every host's namespace and remove the lab directory.

        Returns the number of processes stopped.
        """
        procs.untrack(self)
        stopped = 0
        for host in self.hosts:
            pids = host.pids() if host.alive() else []
            if host.alive() and host.holder_pid not in pids:
                pids.append(host.holder_pid)
            stopped += len(pids)
            procs.terminate(pids)
        shutil.rmtree(self.dir, ignore_errors=True)
        return stopped

    def status(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for host in self.hosts:
            alive = host.alive()
            rows.append(
                {
                    "name": host.name,
                    "address": host.address,
                    "server": host.server,
                    "running": alive,
                    "sshd": bool(alive and host.sshd_pid()),
                    "web": bool(alive and host.server_pid()),
                    "processes": len(host.pids()) if alive else 0,
                    "rss_kib": host.memory_kib() if alive else 0,
                }
            )
        return rows


def _preflight(count: int, apache: int, bare: int, first: int) -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (mount namespaces and overlayfs)", where="lab")
    if count < 1 or count > MAX_HOSTS or first < 1 or first + count - 1 > 254:
        raise LabError(f"host count must be 1..{MAX_HOSTS} on 127.0.1.1-254", where="lab")
    if apache < 0 or bare < 0 or apache + bare > count:
        raise LabError("--apache plus --bare cannot exceed the host count", where="lab")
    needed = dict(REQUIRED)
    if count - apache - bare > 0:
        needed[SERVER_BINARIES["nginx"][0]] = SERVER_BINARIES["nginx"][1]
    if apache:
        needed[SERVER_BINARIES["apache"][0]] = SERVER_BINARIES["apache"][1]
    missing = sorted({pkg for cmd, pkg in needed.items() if not shutil.which(cmd)})
    if missing:
        raise LabError(
            f"missing package(s): {', '.join(missing)}",
            where="lab",
            hint=f"apt-get install {' '.join(missing)} (or run 'make setup')",
        )


def _check_free(addresses: list[str]) -> None:
    for address in addresses:
        for port in (22, 80, 443):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((address, port))
                except OSError as err:
                    raise LabError(
                        f"{address}:{port} is already taken ({err.strerror})",
                        where="lab",
                        hint="stop what listens there (a machine-wide sshd, nginx or apache2 on 0.0.0.0?) or run 'origin-agent lab down'",
                    ) from None


def _inventory_yaml(lab: Lab) -> str:
    """An Ansible-compatible YAML inventory of the lab, grouped by web server."""
    import yaml

    groups: dict[str, dict[str, object]] = {}
    for host in lab.hosts:
        group = {"nginx": "nginx", "apache": "apache", "none": "bare"}[host.server]
        groups.setdefault(group, {"hosts": {}})
        hosts = groups[group]["hosts"]
        assert isinstance(hosts, dict)
        hosts[host.name] = {
            "ansible_host": host.address,
            "web_server": "apache" if host.server == "apache" else "nginx",
            "listen_address": host.address,
            "tls_names": [f"{host.name}.{files.DOMAIN}"],
        }
    data = {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": lab.key_file,
                "known_hosts": lab.known_hosts,
                "issuer": {"backend": "localca", "dir": lab.ca_dir},
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes",
            },
            "children": groups,
        }
    }
    header = (
        "# origin-agent lab inventory, written by 'origin-agent lab up'.\n"
        "# Hosts are local origins on 127.0.1.x; the key and known_hosts below are the lab's own.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
