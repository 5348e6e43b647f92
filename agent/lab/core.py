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
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from agent.errors import LabError
from agent.lab import files

Server = Literal["nginx", "apache", "none"]
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
# Packages hidden on hosts that do not run that server, so each host looks like a real one.
HIDDEN = {
    "nginx": (
        ["/usr/sbin/nginx", "/etc/nginx", "/usr/share/nginx", "/var/lib/nginx", "/var/log/nginx"],
        ("nginx", "nginx-common", "libnginx-mod-"),
    ),
    "apache": (
        [
            "/usr/sbin/apache2",
            "/usr/sbin/apache2ctl",
            "/usr/sbin/apachectl",
            "/etc/apache2",
            "/usr/sbin/a2enmod",
            "/usr/sbin/a2ensite",
            "/usr/sbin/a2query",
            "/var/log/apache2",
        ],
        ("apache2", "apache2-bin", "apache2-data", "apache2-utils"),
    ),
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


_LABS: list[Lab] = []
_reaper_lock = threading.Lock()
_reaper_started = False


def _reap_daemons() -> None:
    """Reap the lab's daemons that die while this process is their subreaper (e.g. Apache
    exiting on a bad graceful restart), so a stale pid file never names a zombie: the agent's
    `apache2ctl start` must see a dead server as dead. Only PIDs read from the hosts' pid files
    are waited for, never another child of this process."""
    known: set[int] = set()
    while True:
        with _reaper_lock:
            labs = list(_LABS)
        for lab in labs:
            for host in lab.hosts:
                for path in ("/run/nginx.pid", "/run/apache2/apache2.pid", "/run/sshd.pid"):
                    try:
                        known.add(int(Path(host.path(path)).read_text().split()[0]))
                    except (OSError, ValueError, IndexError):
                        pass
        for pid in list(known):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                if not Path(f"/proc/{pid}").exists():
                    known.discard(pid)
                continue
            if done:
                known.discard(pid)
        time.sleep(0.05)


def _track(lab: Lab) -> None:
    global _reaper_started
    with _reaper_lock:
        _LABS.append(lab)
        if not _reaper_started:
            _reaper_started = True
            threading.Thread(target=_reap_daemons, name="lab-reaper", daemon=True).start()


def _untrack(lab: Lab) -> None:
    with _reaper_lock:
        if lab in _LABS:
            _LABS.remove(lab)


def _become_subreaper() -> None:
    """Adopt the daemons our hosts start, so ``down`` can reap them (no zombies left behind
    on machines whose PID 1 does not reap)."""
    import ctypes

    pr_set_child_subreaper = 36
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _mnt_ns(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/mnt").st_ino
    except OSError:
        return None


@dataclass
class LabHost:
    """One lab host, as recorded in ``lab.json``."""

    name: str
    index: int
    address: str
    server: Server
    dir: str
    holder_pid: int = 0
    holder_start: int = 0
    mnt_ns: int = 0

    def alive(self) -> bool:
        """The host's namespace holder is the process we started."""
        return bool(self.holder_pid) and _start_time(self.holder_pid) == self.holder_start

    def exec(
        self,
        argv: Sequence[str],
        input: bytes | None = None,
        *,
        check: bool = False,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``argv`` inside this host (its files, its hostname; the machine's network)."""
        if not self.alive():
            raise LabError("host is not running", where=self.name)
        cmd = ["nsenter", "-t", str(self.holder_pid), "-m", "-u", "--", *argv]
        return subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            check=check,
            timeout=timeout,
            start_new_session=True,
        )

    def path(self, path: str) -> str:
        """The machine-side path of ``path`` as this host sees it."""
        return f"/proc/{self.holder_pid}/root{path}"

    def pids(self) -> list[int]:
        """Every process living in this host (its mount namespace)."""
        found: list[int] = []
        if not self.mnt_ns:
            return found
        for entry in os.listdir("/proc"):
            if entry.isdigit() and _mnt_ns(int(entry)) == self.mnt_ns:
                found.append(int(entry))
        return sorted(found)

    def _pidfile(self, path: str) -> int | None:
        try:
            pid = int(Path(self.path(path)).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _mnt_ns(pid) == self.mnt_ns else None

    def sshd_pid(self) -> int | None:
        return self._pidfile("/run/sshd.pid")

    def server_pid(self) -> int | None:
        """PID of the web server's master process, or None if it is not running."""
        if self.server == "nginx":
            return self._pidfile("/run/nginx.pid")
        if self.server == "apache":
            return self._pidfile("/run/apache2/apache2.pid")
        return None

    def start_sshd(self, wait: float = 5.0) -> None:
        self.exec(["/usr/sbin/sshd"], check=True)
        if wait:
            _wait_port(self.address, 22, wait, self.name)

    def stop_sshd(self) -> None:
        """Stop the host's sshd (a fault: the host becomes unreachable)."""
        pid = self.sshd_pid()
        if pid:
            _terminate([pid])

    def start_server(self, wait: float = 5.0) -> None:
        if self.server == "nginx":
            self.exec(["/usr/sbin/nginx"], check=True)
        elif self.server == "apache":
            self.exec(["/usr/sbin/apache2ctl", "start"], check=True)
        if wait and self.server != "none":
            deadline = time.monotonic() + wait
            while not self._server_settled() and time.monotonic() < deadline:
                time.sleep(0.02)
            _wait_port(self.address, 80, max(0.5, deadline - time.monotonic()), self.name)

    def _server_settled(self) -> bool:
        """The master wrote its pid file and has forked its workers (signals such as a reload
        sent earlier could be lost in start-up)."""
        pid = self.server_pid()
        if pid is None:
            return False
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return False
        return bool(children)

    def server_settled(self) -> bool:
        return self._server_settled()

    def stop_server(self) -> None:
        pid = self.server_pid()
        if pid:
            _terminate([pid])

    def memory_kib(self) -> int:
        """Resident memory of every process in this host, in KiB."""
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total


def _wait_port(address: str, port: int, timeout: float, name: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise LabError(f"nothing answers on {address}:{port}", where=name) from None
            time.sleep(0.02)


def _terminate(pids: Sequence[int], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL what is left after ``timeout``; reap our own children."""
    live = list(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in live:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while live and time.monotonic() < deadline:
            for pid in list(live):
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                    live.remove(pid)
            if live:
                time.sleep(0.02)
        if not live:
            return


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


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
        _become_subreaper()
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
        _track(lab)
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
            known.append(_prepare_host(host, pub, names, stock_nginx, dpkg_status))
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
        host.holder_start = _start_time(pid) or 0
        host.mnt_ns = _mnt_ns(pid) or 0
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
        _untrack(self)
        stopped = 0
        for host in self.hosts:
            pids = host.pids() if host.alive() else []
            if host.alive() and host.holder_pid not in pids:
                pids.append(host.holder_pid)
            stopped += len(pids)
            _terminate(pids)
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


def _write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)


def _whiteout(upper: Path, path: str) -> None:
    """Hide ``path`` of the machine inside the host (an overlayfs whiteout)."""
    target = upper / path.lstrip("/")
    if not Path(path).exists() and not Path(path).is_symlink():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(target, 0o600 | 0o020000, os.makedev(0, 0))


def _without_packages(status: str, prefixes: tuple[str, ...]) -> str:
    """The dpkg status file without the stanzas of the given packages."""
    kept = []
    for stanza in status.split("\n\n"):
        first = stanza.split("\n", 1)[0]
        name = first[len("Package: ") :] if first.startswith("Package: ") else ""
        if name and any(name == p or (p.endswith("-") and name.startswith(p)) for p in prefixes):
            continue
        kept.append(stanza)
    return "\n\n".join(kept)


def _prepare_host(
    host: LabHost, client_pub: str, names: list[tuple[str, str]], stock_nginx: str, dpkg_status: str
) -> str:
    """Fill the host's upper directories; return its known_hosts line."""
    base = Path(host.dir)
    upper = base / "upper"
    for d in ("etc", "var", "usr"):
        (upper / d).mkdir(parents=True, exist_ok=True)
        (base / "work" / d).mkdir(parents=True, exist_ok=True)
    (base / "tmp").mkdir(parents=True, exist_ok=True)
    os.chmod(base / "tmp", 0o1777)
    (base / "root").mkdir(parents=True, exist_ok=True)
    os.chmod(base / "root", 0o700)
    _write(base / "root/.ssh/authorized_keys", client_pub + "\n", 0o600)
    os.chmod(base / "root/.ssh", 0o700)
    key, pub = files.ed25519_keypair()
    _write(upper / "etc/ssh/ssh_host_ed25519_key", key, 0o600)
    _write(upper / "etc/ssh/ssh_host_ed25519_key.pub", pub + "\n")
    _write(upper / "etc/ssh/sshd_config", files.sshd_config(host.address))
    _write(upper / "etc/hostname", host.name + "\n")
    _write(upper / "etc/hosts", files.etc_hosts(names))
    _write(upper / "var/www/html/index.html", files.index_html(host.name, host.server))
    if host.server == "nginx":
        _write(upper / "etc/nginx/nginx.conf", files.nginx_conf(stock_nginx))
        _write(
            upper / "etc/nginx/sites-available/default",
            files.nginx_default_site(host.address, host.name),
        )
    if host.server == "apache":
        _write(upper / "etc/apache2/ports.conf", files.apache_ports_conf(host.address))
        _write(upper / "etc/apache2/mods-available/mpm_event.conf", files.apache_mpm_event_conf())
    hidden_prefixes: tuple[str, ...] = ()
    for server, (paths, packages) in HIDDEN.items():
        if server != host.server:
            for path in paths:
                _whiteout(upper, path)
            hidden_prefixes += packages
    _write(upper / "var/lib/dpkg/status", _without_packages(dpkg_status, hidden_prefixes))
    return f"{host.address},{host.name}.{files.DOMAIN} {pub}\n"


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
