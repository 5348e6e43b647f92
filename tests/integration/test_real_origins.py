"""Origins shaped like real ones, through the whole TLS step (bootstrap on lab origins, real
nginx and apache2): a site that already proxies the name to an application is adopted, not
shadowed; two sites claiming a name are refused; an nginx that includes only ``conf.d/`` gets
its site there; a port the server cannot bind fails with the server's own words."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from agent.lab import Lab, LabHost
from agent.servers.adopt import unadopt_nginx
from tests.apps import APP_BODY
from tests.integration.test_tls_origin import name_of, run, served, task_results
from tests.tlscerts import make_ca

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORIGIN_AGENT_STATE_DIR", str(tmp_path / "state"))


def get(host: LabHost, port: int, lab: Lab | None = None) -> bytes:
    """``GET /`` for the host's name over HTTP, or HTTPS checked against the lab's CA."""
    sock = socket.create_connection((host.address, port), timeout=10)
    if lab is not None:
        context = ssl.create_default_context(cafile=str(Path(lab.ca_dir) / "root.pem"))
        sock = context.wrap_socket(sock, server_hostname=name_of(host))
    with sock:
        request = f"GET / HTTP/1.1\r\nHost: {name_of(host)}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.partition(b"\r\n\r\n")[2]


def write(host: LabHost, path: str, text: str) -> None:
    target = Path(host.path(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def reload(host: LabHost) -> None:
    argv = ["nginx", "-s", "reload"] if host.server == "nginx" else ["apache2ctl", "graceful"]
    host.exec(argv, check=True)


def app_answers(host: LabHost, port: int = 80, lab: Lab | None = None) -> bool:
    """The app answers, steadily (a reload leaves old workers answering for a moment)."""
    deadline = time.monotonic() + 10
    streak = 0
    while time.monotonic() < deadline and streak < 3:
        streak = streak + 1 if get(host, port, lab) == APP_BODY else 0
        time.sleep(0.05)
    return streak >= 3


def snapshot(host: LabHost, *dirs: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for d in dirs:
        root = Path(host.path(d))
        for p in sorted(root.rglob("*")) if root.exists() else []:
            if p.is_symlink():
                out[str(p.relative_to(root.parent))] = "-> " + str(p.readlink())
            elif p.is_file():
                out[str(p.relative_to(root.parent))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


NGINX_APP = """\
# the operator's application site
server {{
    listen {address}:80;
    server_name {name};
    location / {{
        proxy_pass http://127.0.0.1:{port};
    }}
}}
"""
APACHE_APP = """\
<VirtualHost {address}:80>
    ServerName {name}
    ProxyPass / http://127.0.0.1:{port}/
    ProxyPassReverse / http://127.0.0.1:{port}/
</VirtualHost>
"""


def operator_site(host: LabHost, port: int, file: str = "app") -> str:
    """The operator's enabled site proxying the host's name to the app; its file's path."""
    if host.server == "nginx":
        path = f"/etc/nginx/sites-available/{file}.conf"
        write(host, path, NGINX_APP.format(address=host.address, name=name_of(host), port=port))
        host.exec(["ln", "-sfn", path, f"/etc/nginx/sites-enabled/{file}.conf"], check=True)
    else:
        path = f"/etc/apache2/sites-available/{file}.conf"
        write(host, path, APACHE_APP.format(address=host.address, name=name_of(host), port=port))
        host.exec(["a2enmod", "-q", "proxy", "proxy_http"], check=True)
        host.exec(["a2ensite", "-q", file], check=True)
    reload(host)
    return path


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_a_site_proxying_to_an_app_is_adopted_and_serves_the_app_over_tls(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str], app: int, server: str
) -> None:
    lab = make_lab(1, apache=1 if server == "apache" else 0)
    host = lab.hosts[0]
    path = operator_site(host, app)
    original = Path(host.path(path)).read_text()
    assert app_answers(host)
    code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    assert code == 0, [e["msg"] for e in events if e.get("status") == "failed"]
    assert task_results(events)[host.name]["status"] == "changed"
    assert app_answers(host, 443, lab)  # HTTPS answers from the app, strict
    assert app_answers(host)  # and plain HTTP still does
    now = Path(host.path(path)).read_text()
    if server == "nginx":
        assert now != original and unadopt_nginx(now) == original  # only our marked lines
        assert Path(host.path("/etc/nginx/sites-enabled/app.conf")).is_symlink()
        assert not Path(host.path(f"/etc/nginx/sites-enabled/{name_of(host)}.conf")).exists()
    else:
        assert now == original  # untouched: a :443 twin of it serves TLS
    code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    again = task_results(events)[host.name]
    assert code == 0 and again["status"] == "ok", (again["status"], again["msg"], again["changes"])


def test_a_failing_config_test_leaves_an_adopted_origin_byte_identical(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str], app: int, tmp_path: Path
) -> None:
    lab = make_lab(1)
    host = lab.hosts[0]
    path = operator_site(host, app)
    # the operator's block already says ssl_verify_client: with our client CA added, nginx -t
    # fails on the duplicate, after our edit (a client_ca that is not a certificate is now
    # refused before anything runs)
    text = Path(host.path(path)).read_text()
    write(
        host, path, text.replace("    server_name", "    ssl_verify_client off;\n    server_name")
    )
    client_ca = tmp_path / "client-ca.pem"
    client_ca.write_text(make_ca("Edge Client CA").cert_pem)
    plan = tmp_path / "plan.yml"
    plan.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "t",
                    "hosts": "all",
                    "tasks": [{"tls_origin": {"client_ca": str(client_ca)}}],
                }
            ]
        )
    )
    before = snapshot(host, "/etc/nginx", "/etc/ssl/origin-agent")
    code, events, err = run(capsys, "run", str(plan), "-i", lab.inventory_path)
    assert code != 0
    failed = json.dumps([e for e in events if e.get("status") == "failed"])
    assert "config test failed" in failed, failed
    assert snapshot(host, "/etc/nginx") == before_nginx(before)
    assert app_answers(host)


def test_a_configuration_already_broken_is_refused_before_writing(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str], app: int
) -> None:
    lab = make_lab(1)
    host = lab.hosts[0]
    operator_site(host, app)
    write(host, "/etc/nginx/conf.d/zz-broken.conf", "this is not nginx;\n")
    before = snapshot(host, "/etc/nginx", "/etc/ssl/origin-agent")
    code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    assert code != 0
    failed = json.dumps([e for e in events if e.get("status") == "failed"])
    assert "does not pass its own test" in failed and "nothing written" in failed, failed
    assert snapshot(host, "/etc/nginx", "/etc/ssl/origin-agent") == before


def before_nginx(before: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in before.items() if k.startswith("nginx/")}


def test_two_sites_claiming_a_name_are_refused_naming_both(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str], app: int
) -> None:
    lab = make_lab(1)
    host = lab.hosts[0]
    operator_site(host, app, "app")
    operator_site(host, app, "app-copy")
    before = snapshot(host, "/etc/nginx", "/etc/ssl/origin-agent")
    code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    assert code != 0
    (failed,) = [e for e in events if e.get("event") == "task_done" and e.get("status") == "failed"]
    assert "sites-enabled/app.conf:2" in failed["msg"], failed["msg"]
    assert "sites-enabled/app-copy.conf:2" in failed["msg"], failed["msg"]
    assert "\n" not in failed["msg"]
    assert snapshot(host, "/etc/nginx", "/etc/ssl/origin-agent") == before


def _only_conf_d(host: LabHost) -> None:
    """nginx.org's layout: nginx.conf includes conf.d/*.conf only (the lab's default site moved
    there; read inside the host: the link's absolute target is the host's file)."""
    conf = Path(host.path("/etc/nginx/nginx.conf"))
    conf.write_text(conf.read_text().replace("include /etc/nginx/sites-enabled/*;", ""))
    default = host.exec(["cat", "/etc/nginx/sites-enabled/default"], check=True).stdout.decode()
    write(host, "/etc/nginx/conf.d/default.conf", default)
    host.exec(["rm", "/etc/nginx/sites-enabled/default"], check=True)
    reload(host)


def test_nginx_that_includes_only_conf_d_gets_its_site_there(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(1)
    host = lab.hosts[0]
    _only_conf_d(host)
    code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    assert code == 0, [e["msg"] for e in events if e.get("status") == "failed"]
    assert Path(host.path(f"/etc/nginx/conf.d/{name_of(host)}.conf")).exists()
    assert not Path(host.path(f"/etc/nginx/sites-enabled/{name_of(host)}.conf")).exists()
    assert served(host) is not None
    code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    assert code == 0 and task_results(events)[host.name]["status"] == "ok", err


def test_nginx_that_would_not_load_our_file_is_refused_before_writing(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = make_lab(1)
    host = lab.hosts[0]
    _only_conf_d(host)
    conf = Path(host.path("/etc/nginx/nginx.conf"))
    conf.write_text(conf.read_text().replace("include /etc/nginx/conf.d/*.conf;", ""))
    Path(host.path("/etc/nginx/conf.d/default.conf")).rename(
        Path(host.path("/etc/nginx/default.conf"))
    )
    conf.write_text(
        conf.read_text().replace("http {", "http {\n\tinclude /etc/nginx/default.conf;", 1)
    )
    reload(host)
    before = snapshot(host, "/etc/nginx", "/etc/ssl/origin-agent")
    code, events, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    assert code != 0
    failed = json.dumps([e for e in events if e.get("status") == "failed"])
    assert "would not load a site file" in failed, failed
    assert snapshot(host, "/etc/nginx", "/etc/ssl/origin-agent") == before


def test_a_port_the_server_cannot_bind_fails_with_its_own_error(
    make_lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lab = make_lab(1)
    host = lab.hosts[0]
    code, _, err = run(capsys, "bootstrap", "-i", lab.inventory_path)
    assert code == 0, err
    before = served(host)
    taken = socket.create_server((host.address, 8443))
    try:
        plan = tmp_path / "plan.yml"
        plan.write_text(
            yaml.safe_dump(
                [
                    {
                        "name": "tls",
                        "hosts": "all",
                        "tasks": [
                            {"name": "move", "tls_origin": {"force": True, "https_port": 8443}}
                        ],
                    }
                ]
            )
        )
        code, events, err = run(capsys, "run", str(plan), "-i", lab.inventory_path)
    finally:
        taken.close()
    assert code != 0
    failed = json.dumps([e for e in events if e.get("status") == "failed"])
    assert f"bind() to {host.address}:8443 failed (98: Address already in use)" in failed, failed
    assert served(host) == before  # the previous certificate, still on 443
