"""tls_origin's arguments are checked for each host before anything runs, in --check too: one
test per argument a real run would refuse only after connecting or after issuing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.errors import AgentError
from agent.modules.tls import argcheck
from agent.modules.tls.origin import TlsOriginModule
from agent.modules.tls.parts import TlsSiteModule
from tests.tlscerts import make_ca

PIN = "A" * 43 + "="
VARS = {"tls_names": ["a.example.com"], "issuer": {"backend": "selfsigned"}}


def refused(params: dict[str, Any], variables: dict[str, Any] | None = None) -> str:
    with pytest.raises(AgentError) as err:
        TlsOriginModule.check_for_host(params, {**VARS, **(variables or {})}, "web1")
    text = str(err.value)
    assert "\n" not in text and "web1" in text
    return text


def test_good_arguments_pass(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(make_ca().cert_pem)
    TlsOriginModule.check_for_host(
        {"site": "www", "keep_versions": 5, "pins": [PIN], "client_ca": str(ca)}, VARS, "web1"
    )


@pytest.mark.parametrize(
    ("arg", "value", "said"),
    [
        ("keep_versions", 1000, "keep_versions must be a whole number from 1 to 100"),
        ("keep_versions", 0, "keep_versions must be"),
        ("validity_days", -5, "validity_days must be"),
        ("validity_days", 10**9, "validity_days must be"),
        ("verify_timeout", -1, "verify_timeout must be"),
        ("renew_before_days", 10**12, "renew_before_days must be"),
        ("pins", ["x"], "is not an SPKI pin"),
        ("pins", ["sha256/" + PIN], "is not an SPKI pin"),
        ("https_port", 70000, "invalid port"),
        ("http_port", 0, "invalid port"),
        ("site", "../../etc", "invalid site name"),
        ("cert_root", "/etc/../x", "cert_root"),
        ("acme_webroot", "/var/www/$(id)", "path"),
        ("document_root", "/var/www/a b", "path"),
        ("server_paths", {"site": "/etc/nginx/x;id"}, "server_paths"),
        ("listen_address", "0.0.0.0;", "listen address"),
        ("listen_address", "::1%lo]:80;\n add_header X y;", "listen address"),
        ("upstream", "http://a b/", "upstream"),
    ],
)
def test_an_argument_a_run_would_refuse_is_refused_first(arg: str, value: Any, said: str) -> None:
    assert said in refused({arg: value})


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "holds no PEM certificate"),
        (b"not a certificate\n", "holds no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "no PEM certificate"),
        (b"x" * (argcheck.MAX_CLIENT_CA + 1), "larger than a CA bundle"),
    ],
)
def test_client_ca_must_be_pem_certificates(tmp_path: Path, content: bytes, said: str) -> None:
    path = tmp_path / "client.pem"
    path.write_bytes(content)
    assert said in refused({"client_ca": str(path)})


@pytest.mark.parametrize("path", ["/dev/null", "/nonexistent/ca.pem", "/"])
def test_client_ca_must_be_a_readable_regular_file(path: str) -> None:
    assert "client_ca" in refused({"client_ca": path})


@pytest.mark.parametrize("value", ["lighttpd", ["nginx"], 5])
def test_web_server_must_name_a_server(value: Any) -> None:
    assert "web_server must be nginx, apache or auto" in refused({}, {"web_server": value})


@pytest.mark.parametrize(
    ("names", "said"),
    [
        ("a.example.com", "tls_names must be a list"),
        (5, "tls_names must be a list"),
        ([], "no names"),
    ],
)
def test_tls_names_must_be_a_list_of_names(names: Any, said: str) -> None:
    assert said in refused({}, {"tls_names": names})


@pytest.mark.parametrize(
    "issuer",
    [
        {"backend": "nosuch"},
        {"backend": "cloudflare", "token": "inline"},
        {"backend": "cloudflare", "token_env": "X_T", "base_url": "http://169.254.169.254/"},
        ["selfsigned"],
    ],
)
def test_an_issuer_a_run_would_refuse_is_refused_first(
    issuer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("X_T", "token-value")
    refused({}, {"issuer": issuer})


def test_an_issuer_whose_secret_is_not_on_this_machine_passes_the_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("X_UNSET", raising=False)
    issuer = {"backend": "cloudflare", "token_env": "X_UNSET"}
    TlsOriginModule.check_for_host({}, {**VARS, "issuer": issuer}, "web1")


def test_a_site_template_runs_in_the_sandbox_during_the_check(tmp_path: Path) -> None:
    template = tmp_path / "site.j2"
    template.write_text("{{ cycler.__init__.__globals__.os.popen('id').read() }}\n")
    assert "unsafe" in refused({"site_template": str(template)})


def test_a_site_module_needs_no_issuer() -> None:
    TlsSiteModule.check_for_host({}, {"tls_names": ["a.example.com"]}, "web1")
