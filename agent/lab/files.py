"""What a lab host's own files look like: sshd config, host keys, web server config.

Pure functions returning text or bytes; :mod:`agent.lab.rootfs` writes them into the host's
overlay upper directories before the host starts, so the host sees them at Debian's paths.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

DOMAIN = "lab.test"


def ed25519_keypair() -> tuple[bytes, str]:
    """Return (OpenSSH private key PEM, ``ssh-ed25519 AAAA...`` public line)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public


def sshd_config(address: str) -> str:
    """A whole sshd_config for one lab host: root by key only, its own host key."""
    return f"""\
# origin-agent lab host {address}: written by `origin-agent lab up`
ListenAddress {address}:22
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
UseDNS no
PrintMotd no
MaxStartups 200:30:400
MaxSessions 64
LogLevel ERROR
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
"""


def nginx_default_site(address: str, name: str) -> str:
    """Debian's default site, bound to this host's address only: plain HTTP ("Flexible")."""
    return f"""\
# origin-agent lab host {name}: plain HTTP only, like an origin behind a Flexible edge
server {{
\tlisten {address}:80 default_server;
\troot /var/www/html;
\tindex index.html;
\tserver_name _;
\tlocation / {{
\t\ttry_files $uri $uri/ =404;
\t}}
}}
"""


def nginx_conf(stock: str) -> str:
    """Debian's nginx.conf with one worker (50 hosts on 2 cores)."""
    return stock.replace("worker_processes auto;", "worker_processes 1;")


def apache_ports_conf(address: str) -> str:
    """Debian's ports.conf with every Listen bound to this host's address."""
    return f"""\
# origin-agent lab: Debian's ports.conf, bound to this host's address
Listen {address}:80

<IfModule ssl_module>
\tListen {address}:443
</IfModule>

<IfModule mod_gnutls.c>
\tListen {address}:443
</IfModule>
"""


def apache_mpm_event_conf() -> str:
    """A small event MPM so that many lab hosts fit in memory."""
    return """\
<IfModule mpm_event_module>
\tStartServers 1
\tServerLimit 4
\tMinSpareThreads 4
\tMaxSpareThreads 16
\tThreadLimit 16
\tThreadsPerChild 8
\tMaxRequestWorkers 32
\tMaxConnectionsPerChild 0
</IfModule>
"""


def index_html(name: str, server: str) -> str:
    return f"<!doctype html><title>{name}</title><p>{name} ({server}) in the origin-agent lab</p>\n"


def etc_hosts(hosts: list[tuple[str, str]]) -> str:
    """/etc/hosts naming every lab host, so hosts can find each other by name."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{addr}\t{name}.{DOMAIN} {name}" for name, addr in hosts]
    return "\n".join(lines) + "\n"
