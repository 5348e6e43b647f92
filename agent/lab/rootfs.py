"""A lab host's own files, written into its overlay upper directories before it starts.

Each host sees the machine's /etc, /var and /usr through overlayfs; what differs (its sshd
config and keys, its web server config, its page, packages it must not appear to have) is
written into its upper directories here, so the host finds them at Debian's paths.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent.lab import files
from agent.lab.host import LabHost

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


def write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Write ``path`` (parents made) with ``mode`` from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)


def whiteout(upper: Path, path: str) -> None:
    """Hide ``path`` of the machine inside the host (an overlayfs whiteout)."""
    target = upper / path.lstrip("/")
    if not Path(path).exists() and not Path(path).is_symlink():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(target, 0o600 | 0o020000, os.makedev(0, 0))


def without_packages(status: str, prefixes: tuple[str, ...]) -> str:
    """The dpkg status file without the stanzas of the given packages."""
    kept = []
    for stanza in status.split("\n\n"):
        first = stanza.split("\n", 1)[0]
        name = first[len("Package: ") :] if first.startswith("Package: ") else ""
        if name and any(name == p or (p.endswith("-") and name.startswith(p)) for p in prefixes):
            continue
        kept.append(stanza)
    return "\n\n".join(kept)


def prepare_host(
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
    write(base / "root/.ssh/authorized_keys", client_pub + "\n", 0o600)
    os.chmod(base / "root/.ssh", 0o700)
    key, pub = files.ed25519_keypair()
    write(upper / "etc/ssh/ssh_host_ed25519_key", key, 0o600)
    write(upper / "etc/ssh/ssh_host_ed25519_key.pub", pub + "\n")
    write(upper / "etc/ssh/sshd_config", files.sshd_config(host.address))
    write(upper / "etc/hostname", host.name + "\n")
    write(upper / "etc/hosts", files.etc_hosts(names))
    write(upper / "var/www/html/index.html", files.index_html(host.name, host.server))
    if host.server == "nginx":
        write(upper / "etc/nginx/nginx.conf", files.nginx_conf(stock_nginx))
        write(
            upper / "etc/nginx/sites-available/default",
            files.nginx_default_site(host.address, host.name),
        )
    if host.server == "apache":
        write(upper / "etc/apache2/ports.conf", files.apache_ports_conf(host.address))
        write(upper / "etc/apache2/mods-available/mpm_event.conf", files.apache_mpm_event_conf())
    hidden_prefixes: tuple[str, ...] = ()
    for server, (paths, packages) in HIDDEN.items():
        if server != host.server:
            for path in paths:
                whiteout(upper, path)
            hidden_prefixes += packages
    write(upper / "var/lib/dpkg/status", without_packages(dpkg_status, hidden_prefixes))
    return f"{host.address},{host.name}.{files.DOMAIN} {pub}\n"
