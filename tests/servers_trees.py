"""Operator config trees shaped like real origins, for the config-map parsers' fixtures.

Each tree is laid over this machine's ``/etc`` (an overlay mount in a private mount and network
namespace, so the real ``/etc`` is never changed) and the real binaries dump what they load:
``nginx -T``, ``apache2ctl -S`` / ``apache2 -S``, ``-t -D DUMP_INCLUDES``. The recorded output
lives in ``tests/fixtures/servers/recorded/<case>/`` (``python -m tests.servers_trees record``,
as root); unit tests parse it, integration tests parse the live output of the same trees.

The texts are module constants so adoption tests can edit exactly the bytes nginx read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

RECORDED = Path(__file__).parent / "fixtures" / "servers" / "recorded"

NGINX_APP_SITE = """\
# The shop's application, proxied by nginx (an operator's file).
upstream shop_app {
    server 127.0.0.1:8080;
}

server {
    listen 80;
    listen [::]:80;
    server_name app.example.com www.app.example.com;

    access_log /var/log/nginx/app.access.log;

    location / {
        proxy_pass http://shop_app;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-Proto $scheme;
    }

    location /static/ {
        alias /srv/app/static/;
    }
}
"""

NGINX_TLS_SITE = """\
server {
\tlisten 127.0.0.1:8443 ssl http2;
\tserver_name static.example.com;
\troot /srv/static;
\tssl_certificate /etc/ssl/static/fullchain.pem;
\tssl_certificate_key /etc/ssl/static/privkey.pem;
}
"""

NGINX_ORG_MAIN = """\
user  www-data;
worker_processes  auto;

error_log  /var/log/nginx/error.log notice;
pid        /var/run/nginx.pid;


events {
    worker_connections  1024;
}


http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /var/log/nginx/access.log  main;

    sendfile        on;
    keepalive_timeout  65;

    include /etc/nginx/conf.d/*.conf;
}
"""

NGINX_ORG_DEFAULT = """\
server {
    listen       80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
"""

NGINX_ORG_APP = """\
server {
    listen 80;
    server_name app.example.com;
    location / {
        proxy_pass http://127.0.0.1:8080;
    }
}
"""

NGINX_DUP_A = """\
server {
    listen 80;
    server_name dup.example.com;
    root /srv/a;
}
"""

NGINX_DUP_B = """\
# a second site for the same name, enabled by mistake
server {
    listen 80;
    server_name www.dup.example.com dup.example.com;
    location / { proxy_pass http://127.0.0.1:8081; }
}
"""

APACHE_APP_SITE = """\
# The shop's application, proxied by Apache (an operator's file).
<VirtualHost *:80>
    ServerName app.example.com
    ServerAlias www.app.example.com
    ServerAdmin webmaster@example.com

    ProxyPreserveHost On
    ProxyPass / http://127.0.0.1:8080/
    ProxyPassReverse / http://127.0.0.1:8080/

    <Location "/admin">
        Require ip 10.0.0.0/8
    </Location>

    ErrorLog ${APACHE_LOG_DIR}/app-error.log
    CustomLog ${APACHE_LOG_DIR}/app-access.log combined
</VirtualHost>
"""

APACHE_DUP_A = """\
<VirtualHost *:80>
    ServerName dup.example.com
    DocumentRoot /var/www/html
</VirtualHost>
"""

APACHE_DUP_B = """\
# a second site for the same name, enabled by mistake
<VirtualHost *:80>
    ServerName www.dup.example.com
    ServerAlias dup.example.com
    ProxyPass / http://127.0.0.1:8081/
</VirtualHost>
"""

RHEL_HTTPD_CONF = """\
ServerRoot "/etc/httpd"
Listen 80
Include conf.modules.d/*.conf
User www-data
Group www-data
ServerAdmin root@localhost
PidFile /run/httpd/httpd.pid
<Directory />
    AllowOverride none
    Require all denied
</Directory>
DocumentRoot "/var/www/html"
ErrorLog "logs/error_log"
LogLevel warn
<IfModule log_config_module>
    LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
    CustomLog "logs/access_log" common
</IfModule>
TypesConfig /etc/mime.types
IncludeOptional conf.d/*.conf
"""

RHEL_MODULES = """\
# (mod_log_config is built into Debian's apache2, the binary driving this tree)
LoadModule mpm_event_module modules/mod_mpm_event.so
LoadModule authz_core_module modules/mod_authz_core.so
LoadModule authz_host_module modules/mod_authz_host.so
LoadModule mime_module modules/mod_mime.so
LoadModule dir_module modules/mod_dir.so
LoadModule alias_module modules/mod_alias.so
LoadModule proxy_module modules/mod_proxy.so
LoadModule proxy_http_module modules/mod_proxy_http.so
LoadModule socache_shmcb_module modules/mod_socache_shmcb.so
"""

RHEL_SSL_CONF = """\
LoadModule ssl_module modules/mod_ssl.so
Listen 443 https
SSLSessionCache shmcb:/run/httpd/sslcache(512000)
<VirtualHost _default_:443>
ErrorLog logs/ssl_error_log
SSLEngine on
SSLCertificateFile /etc/pki/tls/certs/localhost.crt
SSLCertificateKeyFile /etc/pki/tls/private/localhost.key
</VirtualHost>
"""

RHEL_LEGACY_CONF = """\
Listen 127.0.0.1:8080
<VirtualHost 127.0.0.1:8080>
    ServerName legacy.example.com
    DocumentRoot /srv/legacy
</VirtualHost>
"""

RHEL_APP_CONF = """\
<VirtualHost *:80>
    ServerName app.example.com
    ServerAlias www.app.example.com
    ProxyPass / http://127.0.0.1:8080/
    ProxyPassReverse / http://127.0.0.1:8080/
</VirtualHost>
"""


@dataclass(frozen=True)
class Case:
    """One tree: files to write (absolute path -> text), links, dirs to empty, commands."""

    name: str
    files: dict[str, str]
    links: dict[str, str]
    clear: tuple[str, ...]
    commands: dict[str, tuple[str, ...]]


_NGINX_T = {"nginx-T": ("nginx", "-T")}
_A2 = {
    "apache2ctl-S": ("apache2ctl", "-S"),
    "apache2ctl-DUMP_INCLUDES": ("apache2ctl", "-t", "-D", "DUMP_INCLUDES"),
    "main-config": ("cat", "/etc/apache2/apache2.conf"),
}
_HTTPD = ("apache2", "-d", "/etc/httpd", "-f", "conf/httpd.conf")

CASES = (
    Case(
        "nginx-debian",
        {
            "/etc/nginx/sites-available/app.example.com": NGINX_APP_SITE,
            "/etc/nginx/sites-available/static.conf": NGINX_TLS_SITE,
        },
        {
            "/etc/nginx/sites-enabled/app.example.com": "../sites-available/app.example.com",
            "/etc/nginx/sites-enabled/static.conf": "/etc/nginx/sites-available/static.conf",
        },
        (),
        _NGINX_T,
    ),
    Case(
        "nginx-confd",
        {
            "/etc/nginx/nginx.conf": NGINX_ORG_MAIN,
            "/etc/nginx/conf.d/default.conf": NGINX_ORG_DEFAULT,
            "/etc/nginx/conf.d/app.conf": NGINX_ORG_APP,
        },
        {},
        ("/etc/nginx/sites-enabled", "/etc/nginx/sites-available", "/etc/nginx/modules-enabled"),
        _NGINX_T,
    ),
    Case(
        "nginx-duplicate",
        {
            "/etc/nginx/sites-available/a.conf": NGINX_DUP_A,
            "/etc/nginx/sites-available/b.conf": NGINX_DUP_B,
        },
        {
            "/etc/nginx/sites-enabled/a.conf": "../sites-available/a.conf",
            "/etc/nginx/sites-enabled/b.conf": "../sites-available/b.conf",
        },
        (),
        _NGINX_T,
    ),
    Case(
        "apache-debian",
        {"/etc/apache2/sites-available/app.conf": APACHE_APP_SITE},
        {
            "/etc/apache2/sites-enabled/app.conf": "../sites-available/app.conf",
            "/etc/apache2/sites-enabled/default-ssl.conf": "../sites-available/default-ssl.conf",
            **{
                f"/etc/apache2/mods-enabled/{m}": f"../mods-available/{m}"
                for m in (
                    "proxy.load",
                    "proxy.conf",
                    "proxy_http.load",
                    "ssl.load",
                    "ssl.conf",
                    "socache_shmcb.load",
                )
            },
        },
        (),
        _A2,
    ),
    Case(
        "apache-duplicate",
        {
            "/etc/apache2/sites-available/a.conf": APACHE_DUP_A,
            "/etc/apache2/sites-available/b.conf": APACHE_DUP_B,
        },
        {
            "/etc/apache2/sites-enabled/a.conf": "../sites-available/a.conf",
            "/etc/apache2/sites-enabled/b.conf": "../sites-available/b.conf",
            "/etc/apache2/mods-enabled/proxy.load": "../mods-available/proxy.load",
            "/etc/apache2/mods-enabled/proxy_http.load": "../mods-available/proxy_http.load",
        },
        (),
        _A2,
    ),
    Case(
        "apache-rhel",
        {
            "/etc/httpd/conf/httpd.conf": RHEL_HTTPD_CONF,
            "/etc/httpd/conf.modules.d/00-base.conf": RHEL_MODULES,
            "/etc/httpd/conf.d/ssl.conf": RHEL_SSL_CONF,
            "/etc/httpd/conf.d/app.conf": RHEL_APP_CONF,
            "/etc/httpd/conf.d/legacy.conf": RHEL_LEGACY_CONF,
        },
        {"/etc/httpd/modules": "/usr/lib/apache2/modules", "/etc/httpd/logs": "/tmp"},
        (),
        {
            "httpd-S": (*_HTTPD, "-S"),
            "httpd-DUMP_INCLUDES": (*_HTTPD, "-t", "-D", "DUMP_INCLUDES"),
            "main-config": ("cat", "/etc/httpd/conf/httpd.conf"),
        },
    ),
)


def lay_out(case: Case) -> None:
    """Write ``case``'s tree over ``/etc`` (call inside the private overlay only)."""
    for directory in case.clear:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)
    for path, text in case.files.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Path(path).write_text(text)
    for path, target in case.links.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.lexists(path):
            os.remove(path)
        os.symlink(target, path)
    if "static" in "".join(case.files):
        os.makedirs("/etc/ssl/static", exist_ok=True)
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-subj", "/CN=static.example.com", "-days", "30",
                "-keyout", "/etc/ssl/static/privkey.pem", "-out", "/etc/ssl/static/fullchain.pem",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip


def run_case(case: Case) -> dict[str, tuple[str, str, int]]:
    """Lay ``case`` out over a private overlay of ``/etc`` and run its commands there.

    Returns: command key -> (stdout, stderr, exit code). Needs root (mount namespaces).
    """
    with tempfile.TemporaryDirectory(prefix="oa-tree-") as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        script = (
            f"mount -t overlay overlay -o lowerdir=/etc,upperdir={tmp}/up,workdir={tmp}/work /etc"
            f" && mkdir -p /run/httpd && {sys.executable} -m tests.servers_trees _inside"
            f" {case.name} {out}"
        )
        os.makedirs(f"{tmp}/up")
        os.makedirs(f"{tmp}/work")
        subprocess.run(
            ["unshare", "-m", "-n", "--", "sh", "-c", script],
            check=True,
            cwd=Path(__file__).parent.parent,
        )
        results = {}
        for key in case.commands:
            results[key] = (
                (out / f"{key}.stdout").read_text(),
                (out / f"{key}.stderr").read_text(),
                int((out / f"{key}.rc").read_text()),
            )
        return results


def _inside(name: str, out: Path) -> None:
    case = next(c for c in CASES if c.name == name)
    lay_out(case)
    for key, argv in case.commands.items():
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
        (out / f"{key}.stdout").write_text(done.stdout)
        (out / f"{key}.stderr").write_text(done.stderr)
        (out / f"{key}.rc").write_text(str(done.returncode))


def record() -> None:
    """Record every case's output into ``RECORDED`` (run as root)."""
    for case in CASES:
        target = RECORDED / case.name
        target.mkdir(parents=True, exist_ok=True)
        for key, (stdout, stderr, code) in run_case(case).items():
            (target / f"{key}.txt").write_text(stdout)
            (target / f"{key}.stderr.txt").write_text(stderr)
            print(f"{case.name} {key}: exit {code}")


if __name__ == "__main__":
    if sys.argv[1] == "record":
        record()
    else:
        _inside(sys.argv[2], Path(sys.argv[3]))
