"""Real nginx and apache2: the config maps of live output, adoption of a site that proxies to an
application (a real HTTP server on loopback), and the server's own error after a failed reload.

Each server runs from a private copy of Debian's tree under the test's temporary directory, on
a random 127.0.x.y address and free ports, and is stopped by the PID from its pid file.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.errors import ServerConfigError
from agent.servers.adopt import adopt_nginx, apache_twin, unadopt_nginx
from agent.servers.apache_config import parse_apache, with_details
from agent.servers.base import EnableStep, ServerAdapter, adapter_for
from agent.servers.configmap import sole_claim
from agent.servers.errorlog import server_errors
from agent.servers.layout import choose_site, place_site
from agent.servers.nginx_config import parse_dump
from agent.servers.site import SiteSpec
from agent.transport.changes import SwapSymlink
from tests import servers_trees as trees
from tests.apps import APP_BODY
from tests.tlscerts import make_ca, make_leaf, write_cert_dir

pytestmark = pytest.mark.integration
NAME = "app.example.com"


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def _run(argv: list[str] | tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)


def _get(address: str, port: int, *, tls_ca: Path | None = None) -> bytes:
    """``GET /`` for NAME over HTTP, or HTTPS checked against ``tls_ca``; the body."""
    sock: socket.socket = socket.create_connection((address, port), timeout=10)
    if tls_ca is not None:
        context = ssl.create_default_context(cafile=str(tls_ca))
        sock = context.wrap_socket(sock, server_hostname=NAME)
    with sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.partition(b"\r\n\r\n")[2]


def _stop(pid_file: Path) -> None:
    text = pid_file.read_text().strip() if pid_file.exists() else ""
    if not text.isdigit():
        return
    pid = int(text)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def _wait_for(address: str, port: int) -> None:
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex((address, port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {address}:{port}")


class Tree:
    """A private copy of a Debian server tree, its address, ports, certificate and logs."""

    def __init__(self, server: str, root: Path) -> None:
        self.root = root
        self.address = f"127.0.{random.randint(20, 250)}.{random.randint(2, 250)}"
        self.http_port, self.https_port = _free_port(self.address), _free_port(self.address)
        self.conf = root / ("nginx" if server == "nginx" else "apache2")
        shutil.copytree(f"/etc/{self.conf.name}", self.conf, symlinks=True)
        (root / "log").mkdir()
        (root / "run").mkdir()
        (root / "acme").mkdir()
        self.pid_file = root / "run" / "server.pid"
        now = datetime.now(UTC)
        ca = make_ca("Adoption Test Root", start=now - timedelta(days=3))
        leaf = make_leaf([NAME], issuer=ca, start=now - timedelta(days=1))
        self.cert_dir = write_cert_dir(root / "certs" / "v1", leaf, [])
        self.ca_file = root / "ca.pem"
        self.ca_file.write_text(ca.cert_pem)
        log = "error.log"
        overrides = {"conf_dir": str(self.conf), "pid_file": str(self.pid_file)}
        self.adapter: ServerAdapter = adapter_for(
            server, {**overrides, "error_log": str(root / "log" / log)}
        )

    def site(self, upstream: str | None = None, listen_address: str | None = None) -> SiteSpec:
        return SiteSpec(
            name=NAME,
            listen_address=listen_address,
            server_names=(NAME,),
            http_port=self.http_port,
            https_port=self.https_port,
            cert_dir=str(self.cert_dir),
            acme_webroot=str(self.root / "acme"),
            upstream=upstream,
        )

    def run_steps(self, steps: tuple[EnableStep, ...] | list[EnableStep]) -> None:
        for step in steps:
            if isinstance(step, SwapSymlink):
                os.symlink(step.target, step.path)
            else:
                result = _run(step.argv)
                assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("case", trees.CASES, ids=[c.name for c in trees.CASES])
def test_live_output_parses_as_the_recorded_fixture(case: trees.Case) -> None:
    live = trees.run_case(case)
    recorded = trees.RECORDED / case.name
    if case.name.startswith("nginx"):
        stdout, _, code = live["nginx-T"]
        assert code == 0
        assert parse_dump(stdout) == parse_dump((recorded / "nginx-T.txt").read_text())
        return
    prefix = "httpd" if case.name == "apache-rhel" else "apache2ctl"
    outputs = [live[f"{prefix}-S"][0], live[f"{prefix}-DUMP_INCLUDES"][0]]
    fixture = [(recorded / f"{prefix}-{k}.txt").read_text() for k in ("S", "DUMP_INCLUDES")]
    main = (recorded / "main-config.txt").read_text()
    assert live["main-config"][0] == main
    assert parse_apache(*outputs, main) == parse_apache(*fixture, main)


def test_nginx_adopted_proxy_site_serves_the_app_over_tls_and_undoes_exactly(
    tmp_path: Path, app: int
) -> None:
    tree = Tree("nginx", tmp_path)
    main = tree.conf / "nginx.conf"
    main.write_text(
        main.read_text()
        .replace("/etc/nginx", str(tree.conf))
        .replace("/run/nginx.pid", str(tree.pid_file))
        .replace("/var/log/nginx", str(tmp_path / "log"))
    )
    (tree.conf / "sites-enabled" / "default").unlink()
    operator = trees.NGINX_APP_SITE.replace("127.0.0.1:8080", f"127.0.0.1:{app}").replace(
        "listen 80;\n    listen [::]:80;", f"listen {tree.address}:{tree.http_port};"
    )
    target = tree.conf / "sites-available" / NAME
    target.write_text(operator)
    (tree.conf / "sites-enabled" / NAME).symlink_to(f"../sites-available/{NAME}")
    adapter = tree.adapter

    config = adapter.parse_config([_run(adapter.dump_argvs()[0]).stdout])
    claim = sole_claim(config, NAME, tree.http_port)
    assert claim is not None and claim.server.proxy_pass
    assert os.path.realpath(claim.file) == str(target)  # the link's target is what is edited
    site = tree.site()
    assert choose_site(config, site).server == claim.server
    edited = adopt_nginx(operator, claim.server, site)
    target.write_text(edited)
    test = _run(adapter.test_argv())
    assert test.returncode == 0, test.stderr

    try:
        assert _run(adapter.start_argv()).returncode == 0
        _wait_for(tree.address, tree.https_port)
        assert _get(tree.address, tree.https_port, tls_ca=tree.ca_file) == APP_BODY
        assert _get(tree.address, tree.http_port) == APP_BODY

        again = adapter.parse_config([_run(adapter.dump_argvs()[0]).stdout])
        readopted = sole_claim(again, NAME, tree.https_port)
        assert readopted is not None and readopted.ssl
        assert adopt_nginx(edited, readopted.server, site) == edited  # a re-run changes nothing
        assert choose_site(again, site).server == readopted.server

        # a reload onto a port another listener holds: the server's own line, since the reload
        log = Path(adapter.error_log_path(again))
        offset = log.stat().st_size
        with socket.socket() as holder:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            holder.bind((tree.address, 0))
            holder.listen()
            held = holder.getsockname()[1]
            target.write_text(
                edited.replace(
                    "    server_name", f"    listen {tree.address}:{held};\n    server_name", 1
                )
            )
            assert _run(adapter.reload_argv(systemd=False)).returncode == 0
            time.sleep(3)  # nginx tries five times, 500 ms apart
            with log.open("rb") as handle:
                handle.seek(offset)
                since = handle.read().decode()
        bind = f"bind() to {tree.address}:{held} failed (98: Address already in use)"
        assert server_errors(since, "nginx") == [bind, "still could not bind()"]
        assert _get(tree.address, tree.https_port, tls_ca=tree.ca_file) == APP_BODY  # old config
    finally:
        _stop(tree.pid_file)
    assert unadopt_nginx(edited).encode() == operator.encode()


def test_apache_twin_of_a_proxy_vhost_serves_the_app_over_tls(tmp_path: Path, app: int) -> None:
    tree = Tree("apache", tmp_path)
    (tree.conf / "envvars").write_text(
        "unset HOME\nexport APACHE_RUN_USER=www-data\nexport APACHE_RUN_GROUP=www-data\n"
        f"export APACHE_PID_FILE={tree.pid_file}\nexport APACHE_RUN_DIR={tmp_path / 'run'}\n"
        f"export APACHE_LOCK_DIR={tmp_path / 'run'}\nexport APACHE_LOG_DIR={tmp_path / 'log'}\n"
        "export LANG=C\n"
    )
    ports = tree.conf / "ports.conf"
    ports.write_text(
        ports.read_text()
        .replace("Listen 80", f"Listen {tree.address}:{tree.http_port}")
        .replace("Listen 443", f"Listen {tree.address}:{tree.https_port}")
    )
    (tree.conf / "sites-enabled" / "000-default.conf").unlink()
    adapter = tree.adapter
    site = tree.site()
    tree.run_steps(adapter.enable_steps(NAME, tree.site(upstream="http://127.0.0.1:1"))[:1])
    operator = trees.APACHE_APP_SITE.replace("127.0.0.1:8080", f"127.0.0.1:{app}").replace(
        "*:80", f"*:{tree.http_port}"
    )
    mine = tree.conf / "sites-available" / "app.conf"
    mine.write_text(operator)
    (tree.conf / "sites-enabled" / "app.conf").symlink_to("../sites-available/app.conf")

    outputs = [_run(argv).stdout for argv in adapter.dump_argvs()]
    config = adapter.parse_config(outputs, (tree.conf / "apache2.conf").read_text())
    claim = sole_claim(config, NAME, tree.http_port)
    assert claim is not None
    config = with_details(config, {claim.file: operator})
    claim = sole_claim(config, NAME, tree.http_port)
    assert claim is not None and claim.server.proxy_pass
    placement = place_site(config, adapter, f"{NAME}-tls", site)
    assert placement.path == f"{tree.conf}/sites-available/{NAME}-tls.conf"
    Path(placement.path).write_text(apache_twin(operator, claim.server, site))
    Path(adapter.paths.policy_file).write_text(adapter.render_policy(site))
    tree.run_steps(placement.enable)
    test = _run(adapter.test_argv())
    assert test.returncode == 0, test.stdout + test.stderr

    try:
        assert _run(adapter.start_argv()).returncode == 0
        _wait_for(tree.address, tree.https_port)
        assert _get(tree.address, tree.https_port, tls_ca=tree.ca_file) == APP_BODY
        assert _get(tree.address, tree.http_port) == APP_BODY
    finally:
        _stop(tree.pid_file)
    assert mine.read_text() == operator  # the operator's file is untouched


def test_nginx_with_only_conf_d_serves_our_proxy_site_and_refuses_a_tree_without_it(
    tmp_path: Path, app: int
) -> None:
    tree = Tree("nginx", tmp_path)
    main = tree.conf / "nginx.conf"
    main_text = (
        trees.NGINX_ORG_MAIN.replace("/etc/nginx", str(tree.conf))
        .replace("/var/run/nginx.pid", str(tree.pid_file))
        .replace("/var/log/nginx", str(tmp_path / "log"))
    )
    main.write_text(main_text)
    for folder in ("sites-enabled", "sites-available", "modules-enabled"):
        shutil.rmtree(tree.conf / folder)
    (tree.conf / "sites-enabled").mkdir()  # there, but not included: must not be used
    adapter = adapter_for(
        "nginx",
        {"layout": "rhel", "conf_dir": str(tree.conf), "pid_file": str(tree.pid_file)},
    )
    site = tree.site(upstream=f"http://127.0.0.1:{app}", listen_address=tree.address)

    config = adapter.parse_config([_run(adapter.dump_argvs()[0]).stdout])
    placement = place_site(config, adapter, site.name, site)
    assert (placement.path, placement.enable) == (f"{tree.conf}/conf.d/{NAME}.conf", ())
    Path(placement.path).write_text(adapter.render_site(site))
    Path(adapter.paths.policy_file).write_text(adapter.render_policy(site))
    main.write_text(adapter.edit_main_config(main.read_text(), site))
    test = _run(adapter.test_argv())
    assert test.returncode == 0, test.stderr
    try:
        assert _run(adapter.start_argv()).returncode == 0
        _wait_for(tree.address, tree.https_port)
        assert _get(tree.address, tree.https_port, tls_ca=tree.ca_file) == APP_BODY
        assert _get(tree.address, tree.http_port) == APP_BODY
    finally:
        _stop(tree.pid_file)

    main.write_text(main_text.replace(f"include {tree.conf}/conf.d/*.conf;", ""))
    bare = adapter.parse_config([_run(adapter.dump_argvs()[0]).stdout])
    with pytest.raises(ServerConfigError, match=f"^{main}: nginx would not load a site file"):
        place_site(bare, adapter, site.name, site)


def test_rhel_httpd_tree_driven_with_debians_binary_serves_our_proxy_site(
    tmp_path: Path, app: int
) -> None:
    tree = Tree("apache", tmp_path)  # (its Debian copy is not used: the tree is RHEL's)
    httpd = tmp_path / "httpd"
    (httpd / "conf").mkdir(parents=True)
    (httpd / "modules").symlink_to("/usr/lib/apache2/modules")
    (httpd / "logs").symlink_to(tmp_path / "log")
    run = tmp_path / "run"
    (httpd / "conf" / "httpd.conf").write_text(
        trees.RHEL_HTTPD_CONF.replace('"/etc/httpd"', f'"{httpd}"\nDefaultRuntimeDir {run}')
        .replace("Listen 80", f"Listen {tree.address}:{tree.http_port}")
        .replace("/run/httpd/httpd.pid", str(tree.pid_file))
    )
    (httpd / "conf.modules.d").mkdir()
    (httpd / "conf.modules.d" / "00-base.conf").write_text(trees.RHEL_MODULES)
    (httpd / "conf.d").mkdir()
    (httpd / "conf.d" / "ssl.conf").write_text(
        trees.RHEL_SSL_CONF.replace("/run/httpd", str(run))
        .replace("/etc/pki/tls/certs/localhost.crt", f"{tree.cert_dir}/fullchain.pem")
        .replace("/etc/pki/tls/private/localhost.key", f"{tree.cert_dir}/privkey.pem")
    )
    adapter = adapter_for(
        "apache",
        {
            "layout": "rhel",
            "conf_dir": str(httpd),
            "binary": "/usr/sbin/apache2",
            "pid_file": str(tree.pid_file),
        },
    )
    site = tree.site(upstream=f"http://127.0.0.1:{app}", listen_address=tree.address)

    outputs = [_run(argv).stdout for argv in adapter.dump_argvs()]
    main = Path(adapter.paths.main_config)
    config = adapter.parse_config(outputs, main.read_text())
    placement = place_site(config, adapter, site.name, site)
    assert (placement.path, placement.enable) == (f"{httpd}/conf.d/{NAME}.conf", ())
    Path(placement.path).write_text(adapter.render_site(site))
    Path(adapter.paths.policy_file).write_text(adapter.render_policy(site))
    ports = Path(adapter.main_config_path)
    assert ports == httpd / "conf.d" / "ssl.conf"
    ports.write_text(adapter.edit_main_config(ports.read_text(), site))
    test = _run(adapter.test_argv())
    assert test.returncode == 0, test.stdout + test.stderr
    try:
        assert _run(adapter.start_argv()).returncode == 0
        _wait_for(tree.address, tree.https_port)
        assert _get(tree.address, tree.https_port, tls_ca=tree.ca_file) == APP_BODY
        assert _get(tree.address, tree.http_port) == APP_BODY
    finally:
        _stop(tree.pid_file)
