"""Real nginx and apache2 processes, each from a private copy of Debian's config tree under
/tmp, serving our rendered sites on 127.0.0.x; judged from outside with the probe.

Each server is started with the adapter's own argv (``nginx -c``, ``apache2ctl`` with
``APACHE_CONFDIR``) and stopped by the PID from its pid file, also when a test fails.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from agent.lab import Lab, LabHost
from agent.pki.modes import evaluate
from agent.pki.pins import spki_pin
from agent.pki.probe import ClientCertificate, probe, probe_http, served_leaf
from agent.secret import Secret
from agent.servers.base import ServerAdapter, adapter_for
from agent.servers.site import SiteSpec
from agent.transport.changes import RunCommand, SwapSymlink
from tests.tlscerts import Issued, make_ca, make_leaf, write_cert_dir

pytestmark = pytest.mark.integration
NAME = "origin1.example.com"
OTHER = "other.example.com"


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def _run(argv: list[str] | tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)


class Origin:
    """One server under test: a private config tree, a cert dir, a docroot, an ACME webroot."""

    def __init__(self, server: str, root: Path, pki: dict[str, Issued]) -> None:
        self.server = server
        self.root = root
        self.pki = pki
        self.address = f"127.0.{random.randint(20, 250)}.{random.randint(2, 250)}"
        self.http_port, self.https_port = _free_port(self.address), _free_port(self.address)
        self.conf_dir = root / ("nginx" if server == "nginx" else "apache2")
        shutil.copytree(
            "/etc/nginx" if server == "nginx" else "/etc/apache2", self.conf_dir, symlinks=True
        )
        (root / "log").mkdir()
        (root / "run").mkdir()
        self.pid_file = root / "run" / "server.pid"
        self.adapter: ServerAdapter = adapter_for(server, {"conf_dir": str(self.conf_dir)})
        self.docroot = root / "www"
        self.docroot.mkdir()
        (self.docroot / "index.html").write_text("hello from the origin\n")
        self.webroot = root / "acme"
        (self.webroot / ".well-known" / "acme-challenge").mkdir(parents=True)
        self.cert_dir = write_cert_dir(root / "certs" / "v1", pki["leaf"], [pki["inter"]])
        if server == "nginx":
            self._prepare_nginx()
        else:
            self._prepare_apache()

    def _prepare_nginx(self) -> None:
        conf = self.conf_dir / "nginx.conf"
        text = conf.read_text().replace("/etc/nginx", str(self.conf_dir))
        text = text.replace("/run/nginx.pid", str(self.pid_file)).replace(
            "/var/log/nginx", str(self.root / "log")
        )
        conf.write_text(text)
        (self.conf_dir / "sites-enabled" / "default").unlink()  # listens on *:80

    def _prepare_apache(self) -> None:
        (self.conf_dir / "envvars").write_text(
            "unset HOME\nexport APACHE_RUN_USER=www-data\nexport APACHE_RUN_GROUP=www-data\n"
            f"export APACHE_PID_FILE={self.pid_file}\nexport APACHE_RUN_DIR={self.root / 'run'}\n"
            f"export APACHE_LOCK_DIR={self.root / 'run'}\n"
            f"export APACHE_LOG_DIR={self.root / 'log'}\n"
            "export LANG=C\n"
        )
        ports = self.conf_dir / "ports.conf"
        ports.write_text(
            ports.read_text()
            .replace("Listen 80", f"Listen {self.http_port}")
            .replace("Listen 443", f"Listen {self.https_port}")
        )
        (self.conf_dir / "sites-enabled" / "000-default.conf").unlink()

    def site(self, **changes: object) -> SiteSpec:
        base = SiteSpec(
            name="origin1",
            server_names=(NAME, f"www.{NAME}"),
            listen_address=self.address,
            https_port=self.https_port,
            http_port=self.http_port,
            cert_dir=str(self.cert_dir),
            acme_webroot=str(self.webroot),
            document_root=str(self.docroot),
        )
        return replace(base, **changes)  # type: ignore[arg-type]

    def deploy(self, site: SiteSpec, adapter: ServerAdapter | None = None) -> None:
        """Write what a tls_site run would write, then enable it (as the adapter says)."""
        adapter = adapter or self.adapter
        main = Path(adapter.main_config_path)
        main.write_text(adapter.edit_main_config(main.read_text(), site))
        Path(adapter.paths.policy_file).write_text(adapter.render_policy(site))
        Path(adapter.site_path(site.name)).write_text(adapter.render_site(site))
        for step in adapter.enable_steps(site.name):
            if isinstance(step, SwapSymlink):
                if not os.path.lexists(step.path):
                    os.symlink(step.target, step.path)
            else:
                assert isinstance(step, RunCommand)
                result = _run(step.argv)
                assert result.returncode == 0, result.stdout + result.stderr
                for check in step.unless:
                    assert _run(check).returncode == 0, check

    def config_test(self) -> subprocess.CompletedProcess[str]:
        return _run(self.adapter.test_argv())

    def start(self) -> None:
        result = _run(self.adapter.start_argv())
        assert result.returncode == 0, result.stdout + result.stderr
        for _ in range(100):
            if self.pid_file.exists() and self.pid_file.read_text().strip():
                break
            time.sleep(0.05)
        for _ in range(100):
            if (
                probe(self.address, self.https_port, NAME, timeout=2, http_request=False).outcome
                != "refused"
            ):
                return
            time.sleep(0.05)

    def reload(self) -> None:
        result = _run(self.adapter.reload_argv(systemd=False))
        assert result.returncode == 0, result.stdout + result.stderr
        time.sleep(1.0)  # let old workers hand over

    def stop(self) -> None:
        if not self.pid_file.exists():
            return
        text = self.pid_file.read_text().strip()
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


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    """Certificates valid at the real time (servers and the probe use the real clock)."""
    now = datetime.now(UTC)
    root = make_ca("Origin Root", start=now - timedelta(days=30))
    inter = make_ca("Origin Intermediate", parent=root, start=now - timedelta(days=30))
    edge_ca = make_ca("Edge Client CA", start=now - timedelta(days=30))
    stranger_ca = make_ca("Stranger CA", start=now - timedelta(days=30))
    return {
        "root": root,
        "inter": inter,
        "edge_ca": edge_ca,
        "leaf": make_leaf([NAME, f"www.{NAME}"], issuer=inter, start=now - timedelta(days=1)),
        "other": make_leaf([OTHER], issuer=inter, start=now - timedelta(days=1)),
        "edge": make_leaf(
            ["edge.cdn.test"], issuer=edge_ca, client=True, start=now - timedelta(days=1)
        ),
        "stranger": make_leaf(
            ["stranger.test"], issuer=stranger_ca, client=True, start=now - timedelta(days=1)
        ),
    }


@pytest.fixture(params=["nginx", "apache"])
def origin(request: pytest.FixtureRequest, pki: dict[str, Issued]) -> Iterator[Origin]:
    root = Path(tempfile.mkdtemp(prefix=f"oa-servers-{request.param}-", dir="/tmp"))
    root.chmod(0o755)  # workers run as www-data
    server = Origin(request.param, root, pki)
    try:
        yield server
    finally:
        server.stop()
        if not os.environ.get("OA_KEEP_TMP"):
            shutil.rmtree(root, ignore_errors=True)


def _other_site(origin: Origin, protocols: str = "") -> None:
    """Another operator's site on the same TLS address, made the default for it."""
    other_dir = write_cert_dir(
        origin.root / "certs" / "other", origin.pki["other"], [origin.pki["inter"]]
    )
    if origin.server == "nginx":
        text = (
            f"server {{\n listen {origin.address}:{origin.https_port} ssl default_server;\n"
            f" server_name {OTHER};\n ssl_certificate {other_dir}/fullchain.pem;\n"
            f" ssl_certificate_key {other_dir}/privkey.pem;\n"
            + (f" ssl_protocols {protocols};\n" if protocols else "")
            + "}\n"
        )
        (origin.conf_dir / "sites-enabled" / "000-other.conf").write_text(text)
    else:
        text = (
            f"<VirtualHost {origin.address}:{origin.https_port}>\n"
            f" ServerName {OTHER}\n SSLEngine on\n"
            f" SSLCertificateFile {other_dir}/fullchain.pem\n"
            f" SSLCertificateKeyFile {other_dir}/privkey.pem\n"
            + (f" SSLProtocol {protocols}\n" if protocols else "")
            + "</VirtualHost>\n"
        )
        (origin.conf_dir / "sites-enabled" / "000-other.conf").write_text(text)


def test_probe_sees_the_deployed_chain_and_it_is_strict(origin: Origin) -> None:
    site = origin.site()
    origin.deploy(site)
    test = origin.config_test()
    assert test.returncode == 0, test.stderr
    origin.start()
    served = probe(origin.address, origin.https_port, NAME, timeout=5)
    assert served.outcome == "ok", served.error
    assert served.chain_der == tuple(
        c.cert.public_bytes(serialization.Encoding.DER)
        for c in (origin.pki["leaf"], origin.pki["inter"])
    )
    assert served.protocol == "TLSv1.3"
    assert served.http_status == 200
    assert not served.client_cert_requested
    verdict = evaluate(
        served,
        names=site.server_names,
        trust_anchors_pem=origin.pki["root"].cert_pem,
        now=datetime.now(UTC),
    )
    assert verdict.mode == "strict", verdict.reasons
    # the light look of a verification's repeated handshakes sees the same leaf
    assert served_leaf(origin.address, origin.https_port, NAME, timeout=5) == served.leaf_der


def test_the_light_look_at_the_leaf_says_none_when_nothing_is_served() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # the kernel accepts; nobody ever answers
        port = listener.getsockname()[1]
        started = time.monotonic()
        assert served_leaf("127.0.0.1", port, NAME, timeout=0.5) is None
        assert time.monotonic() - started < 2
    assert served_leaf("127.0.0.1", port, NAME, timeout=0.5) is None  # refused


def _versions(origin: Origin, sni: str = NAME) -> dict[str, str]:
    """Outcome of a TLS 1.2-only and a TLS 1.3-only client."""
    return {
        v: probe(
            origin.address,
            origin.https_port,
            sni,
            timeout=5,
            min_version=v,
            max_version=v,
            http_request=False,
        ).outcome
        for v in ("TLSv1.2", "TLSv1.3")
    }


def test_intermediate_profile_serves_tls12_and_tls13(origin: Origin) -> None:
    origin.deploy(origin.site(profile="intermediate"))
    origin.start()
    assert _versions(origin) == {"TLSv1.2": "ok", "TLSv1.3": "ok"}


def test_modern_profile_refuses_a_tls12_only_client(origin: Origin) -> None:
    origin.deploy(origin.site(profile="modern"))
    origin.start()
    assert _versions(origin) == {"TLSv1.2": "handshake_failed", "TLSv1.3": "ok"}
    served = probe(origin.address, origin.https_port, NAME, timeout=5)
    assert served.protocol == "TLSv1.3" and served.http_status == 200


def test_modern_holds_when_another_server_is_default_on_the_address(origin: Origin) -> None:
    _other_site(origin)
    origin.deploy(origin.site(profile="modern"))
    assert origin.config_test().returncode == 0, origin.config_test().stderr
    origin.start()
    other = probe(origin.address, origin.https_port, OTHER, timeout=5, http_request=False)
    assert other.outcome == "ok" and other.chain_der[0] == origin.pki["other"].cert.public_bytes(
        serialization.Encoding.DER
    )
    assert _versions(origin) == {"TLSv1.2": "handshake_failed", "TLSv1.3": "ok"}


@pytest.mark.parametrize("origin", ["nginx"], indirect=True)
def test_without_the_main_config_edit_nginx_lets_tls12_through(origin: Origin) -> None:
    """Why edit_main_config exists: the server block alone cannot set the protocol."""
    _other_site(origin)
    site = origin.site(profile="modern")
    Path(origin.adapter.site_path(site.name)).write_text(origin.adapter.render_site(site))
    os.symlink(origin.adapter.site_path(site.name), origin.adapter.enabled_path(site.name))
    origin.start()
    assert _versions(origin)["TLSv1.2"] == "ok"


@pytest.mark.parametrize("origin", ["apache"], indirect=True)
def test_apache_modern_vhost_holds_even_if_the_first_vhost_sets_its_own_protocols(
    origin: Origin,
) -> None:
    """nginx has no such test: there the default server's own ssl_protocols decide."""
    _other_site(origin, protocols="all -SSLv3")
    origin.deploy(origin.site(profile="modern"))
    origin.start()
    assert _versions(origin) == {"TLSv1.2": "handshake_failed", "TLSv1.3": "ok"}
    assert _versions(origin, OTHER) == {"TLSv1.2": "ok", "TLSv1.3": "ok"}


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_authenticated_origin_pulls_serve_only_the_edge(origin: Origin, version: str) -> None:
    ca_file = origin.root / "edge-ca.pem"
    ca_file.write_text(origin.pki["edge_ca"].cert_pem)
    origin.deploy(origin.site(client_ca_file=str(ca_file)))
    origin.start()

    def client(name: str) -> ClientCertificate:
        issued = origin.pki[name]
        return ClientCertificate(issued.cert_pem, Secret(issued.key_pem))

    def ask(cert: ClientCertificate | None) -> object:
        return probe(
            origin.address,
            origin.https_port,
            NAME,
            timeout=5,
            client_cert=cert,
            min_version=version,
            max_version=version,
        )

    anonymous = ask(None)
    assert anonymous.outcome == "client_cert_required", anonymous  # type: ignore[attr-defined]
    assert anonymous.client_cert_requested and anonymous.chain_der  # type: ignore[attr-defined]
    edge = ask(client("edge"))
    assert edge.outcome == "ok" and edge.http_status == 200, edge  # type: ignore[attr-defined]
    stranger = ask(client("stranger"))
    assert stranger.outcome == "client_cert_rejected", stranger  # type: ignore[attr-defined]


def test_config_test_catches_a_broken_template(origin: Origin) -> None:
    broken = origin.root / "broken.conf.j2"
    good = origin.adapter.site_template.read_text()
    marker = (
        "    root {{ document_root }};\n"
        if origin.server == "nginx"
        else "    DocumentRoot {{ document_root }}\n"
    )
    bad_line = (
        "    no_such_directive on;\n" if origin.server == "nginx" else "    NoSuchDirective on\n"
    )
    broken.write_text(good.replace(marker, marker + bad_line, 1))
    adapter = type(origin.adapter)(origin.adapter.paths, site_template=broken)
    site = origin.site()
    origin.deploy(site, adapter)
    result = origin.config_test()
    assert result.returncode != 0
    problem = adapter.parse_test_output(result.stdout + result.stderr)
    assert problem is not None
    assert problem.file.endswith("origin1.conf")
    rendered = Path(adapter.site_path(site.name)).read_text().splitlines()
    assert rendered[problem.line - 1] == bad_line.rstrip("\n")


def test_port_80_redirects_to_https_but_serves_acme_challenges(origin: Origin) -> None:
    origin.deploy(origin.site(redirect_http=True))
    token = origin.webroot / ".well-known" / "acme-challenge" / "tok-123"
    token.write_text("tok-123.thumbprint")
    token.chmod(0o644)
    origin.start()
    challenge = probe_http(
        origin.address,
        origin.http_port,
        NAME,
        path="/.well-known/acme-challenge/tok-123",
        timeout=5,
    )
    assert challenge.status == 200 and challenge.body == b"tok-123.thumbprint"
    redirect = probe_http(origin.address, origin.http_port, NAME, path="/some/page?x=1", timeout=5)
    assert redirect.status == 308
    assert redirect.location == f"https://{NAME}:{origin.https_port}/some/page?x=1"


def test_without_redirect_port_80_serves_the_site_and_acme(origin: Origin) -> None:
    origin.deploy(origin.site(redirect_http=False))
    token = origin.webroot / ".well-known" / "acme-challenge" / "tok-9"
    token.write_text("tok-9.x")
    token.chmod(0o644)
    origin.start()
    page = probe_http(origin.address, origin.http_port, NAME, timeout=5)
    assert page.status == 200 and page.body == b"hello from the origin\n"
    assert (
        probe_http(
            origin.address,
            origin.http_port,
            NAME,
            path="/.well-known/acme-challenge/tok-9",
            timeout=5,
        ).body
        == b"tok-9.x"
    )
    plain = probe(origin.address, origin.http_port, NAME, timeout=5)
    assert plain.outcome == "plain_http" and not plain.tls
    assert evaluate(plain, names=[NAME], now=datetime.now(UTC)).mode == "flexible"


def test_reload_serves_the_new_certificate_and_hsts(origin: Origin) -> None:
    origin.deploy(origin.site())
    origin.start()
    before = probe(origin.address, origin.https_port, NAME, timeout=5)
    assert spki_pin(before.certificates[0]) == spki_pin(origin.pki["leaf"].cert)
    fresh = make_leaf(
        [NAME, f"www.{NAME}"],
        issuer=origin.pki["inter"],
        start=datetime.now(UTC) - timedelta(hours=1),
    )
    v2 = write_cert_dir(origin.root / "certs" / "v2", fresh, [origin.pki["inter"]])
    origin.deploy(origin.site(cert_dir=str(v2), hsts=True))
    assert origin.config_test().returncode == 0
    origin.reload()
    # A graceful reload is asynchronous: old workers answer for a moment (bounded wait).
    deadline = time.monotonic() + 10
    after = probe(origin.address, origin.https_port, NAME, timeout=5)
    while (
        not after.certificates or spki_pin(after.certificates[0]) != spki_pin(fresh.cert)
    ) and time.monotonic() < deadline:
        time.sleep(0.05)
        after = probe(origin.address, origin.https_port, NAME, timeout=5)
    assert spki_pin(after.certificates[0]) == spki_pin(fresh.cert)
    assert after.http_status == 200


def test_self_signed_origin_is_full_or_pinned(origin: Origin) -> None:
    now = datetime.now(UTC)
    selfsigned = make_leaf([NAME], start=now - timedelta(hours=1))
    cert_dir = write_cert_dir(origin.root / "certs" / "self", selfsigned, [])
    origin.deploy(origin.site(cert_dir=str(cert_dir), server_names=(NAME,)))
    origin.start()
    served = probe(origin.address, origin.https_port, NAME, timeout=5)
    assert served.chain_der == (selfsigned.cert.public_bytes(serialization.Encoding.DER),)
    anchors = origin.pki["root"].cert_pem
    assert evaluate(served, names=[NAME], trust_anchors_pem=anchors, now=now).mode == "full"
    pinned = evaluate(
        served, names=[NAME], trust_anchors_pem=anchors, pins=[spki_pin(selfsigned.cert)], now=now
    )
    assert pinned.mode == "full_pinned" and pinned.reasons == ("self-signed",)


def test_nothing_listening_is_refused_quickly() -> None:
    address = "127.0.0.1"
    port = _free_port(address)
    started = time.monotonic()
    served = probe(address, port, NAME, timeout=5)
    assert served.outcome == "refused" and time.monotonic() - started < 2


# -- on lab hosts (Debian's own /etc/nginx and /etc/apache2 in each host's namespace) -------------


def _host_write(host: LabHost, path: str, data: str, mode: int = 0o644) -> None:
    """Atomic write inside the host; the file is never readable by others before its chmod."""
    script = 'umask 077 && mkdir -p "$(dirname "$1")" && cat > "$1.tmp" && chmod "$2" "$1.tmp"'
    script += ' && mv "$1.tmp" "$1"'
    host.exec(["sh", "-c", script, "sh", path, f"{mode:o}"], input=data.encode(), check=True)


def _host_run(
    host: LabHost, argv: list[str] | tuple[str, ...]
) -> subprocess.CompletedProcess[bytes]:
    return host.exec(list(argv))


def _deploy_on_lab(host: LabHost, pki: dict[str, Issued], names: tuple[str, ...]) -> SiteSpec:
    """What the tls_site run does, step by step, with the adapter's paths and argv."""
    site = SiteSpec(name=host.name, server_names=names, listen_address=host.address)
    version = f"/etc/ssl/origin-agent/{host.name}/v1"
    _host_write(host, f"{version}/privkey.pem", pki["leaf"].key_pem, 0o600)
    _host_write(host, f"{version}/cert.pem", pki["leaf"].cert_pem)
    _host_write(host, f"{version}/chain.pem", pki["inter"].cert_pem)
    _host_write(host, f"{version}/fullchain.pem", pki["leaf"].cert_pem + pki["inter"].cert_pem)
    host.exec(["ln", "-sfn", "v1", f"/etc/ssl/origin-agent/{host.name}/current"], check=True)
    adapter = adapter_for(host.server)
    main = host.exec(["cat", adapter.main_config_path], check=True).stdout.decode()
    _host_write(host, adapter.main_config_path, adapter.edit_main_config(main, site))
    _host_write(host, adapter.paths.policy_file, adapter.render_policy(site))
    _host_write(host, adapter.site_path(site.name), adapter.render_site(site))
    for step in adapter.enable_steps(site.name):
        if isinstance(step, SwapSymlink):
            host.exec(["ln", "-sfn", step.target, step.path], check=True)
        else:
            assert _host_run(host, step.argv).returncode == 0
    test = _host_run(host, adapter.test_argv())
    assert test.returncode == 0, test.stderr
    reload = _host_run(host, adapter.reload_argv(systemd=False))
    assert reload.returncode == 0, reload.stderr
    return site


def test_lab_origins_move_from_flexible_to_strict(make_lab: Callable[..., Lab]) -> None:
    now = datetime.now(UTC)
    root = make_ca("Lab Root", start=now - timedelta(days=30))
    inter = make_ca("Lab Intermediate", parent=root, start=now - timedelta(days=30))
    lab = make_lab(2, apache=1)
    for host in lab.hosts:
        name = f"{host.name}.lab.test"
        before = probe(host.address, 443, name, timeout=5)
        page = probe_http(host.address, 80, name, timeout=5)
        assert before.outcome == "refused" and page.status == 200
        assert evaluate(before, names=[name], now=now, http_available=True).mode == "flexible"

        leaf = make_leaf([name], issuer=inter, start=now - timedelta(hours=1))
        site = _deploy_on_lab(host, {"leaf": leaf, "inter": inter}, (name,))
        deadline = time.monotonic() + 10
        served = probe(host.address, 443, name, timeout=5)
        while served.outcome != "ok" and time.monotonic() < deadline:  # graceful hand-over
            time.sleep(0.2)
            served = probe(host.address, 443, name, timeout=5)
        assert served.outcome == "ok", (host.server, served.error)
        assert served.leaf_der == leaf.cert.public_bytes(serialization.Encoding.DER)
        verdict = evaluate(
            served, names=site.server_names, trust_anchors_pem=root.cert_pem, now=now
        )
        assert verdict.mode == "strict", (host.server, verdict.reasons)
        assert _versions_at(host.address, name) == {"TLSv1.2": "ok", "TLSv1.3": "ok"}
        assert host.server_pid() is not None


def _versions_at(address: str, sni: str) -> dict[str, str]:
    return {
        v: probe(
            address, 443, sni, timeout=5, min_version=v, max_version=v, http_request=False
        ).outcome
        for v in ("TLSv1.2", "TLSv1.3")
    }


def test_a_silent_port_times_out_within_the_bound() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # the kernel accepts; nobody ever answers
        port = listener.getsockname()[1]
        started = time.monotonic()
        served = probe("127.0.0.1", port, NAME, timeout=1.0)
        assert served.outcome == "timeout"
        assert 0.9 < time.monotonic() - started < 3


def test_a_port_that_hangs_up_is_not_tls() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]

        def hang_up() -> None:
            for _ in range(2):  # the handshake, then the plain-HTTP check
                conn, _ = listener.accept()
                conn.close()

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        served = probe("127.0.0.1", port, NAME, timeout=3)
        thread.join(timeout=5)
        assert served.outcome == "not_tls" and not served.tls
