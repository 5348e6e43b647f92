"""Secrets never travel in clear text and are never echoed: issuer URLs are https (http only to
loopback), a secret pasted into a *_env/*_file field is not shown, a token file others may read
is refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.errors import InventoryError, IssuerError
from agent.inventory import Host, connection_spec
from agent.pki.issuers.acme import AcmeIssuer
from agent.pki.issuers.cfssl import CfsslIssuer
from agent.pki.issuers.cloudflare import CloudflareIssuer

TOKEN = "Zq8sK2v-ThIsIsTheRealCloudflareToken_0123456789"
URL_KEYS: dict[str, tuple[Any, str, dict[str, str]]] = {
    "cloudflare": (CloudflareIssuer, "base_url", {"token_env": "CF_EDGE_TOKEN"}),
    "cfssl": (CfsslIssuer, "url", {}),
    "acme": (AcmeIssuer, "directory", {}),
}


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CF_EDGE_TOKEN", TOKEN)


def error_of(cls: Any, config: dict[str, Any]) -> str:
    with pytest.raises(IssuerError) as exc:
        cls.from_config(config)
    text = str(exc.value)
    assert "\n" not in text and TOKEN not in text
    return text


@pytest.mark.parametrize("backend", sorted(URL_KEYS))
@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest", "http://attacker.example/", "http://10.0.0.1:8888"]
)
def test_plain_http_to_a_remote_host_is_refused(backend: str, url: str) -> None:
    cls, key, extra = URL_KEYS[backend]
    text = error_of(cls, {"backend": backend, key: url, **extra})
    assert f"issuer {backend}: {key} http://" in text and "clear text" in text


@pytest.mark.parametrize("backend", sorted(URL_KEYS))
def test_a_query_string_in_the_url_is_refused(backend: str) -> None:
    cls, key, extra = URL_KEYS[backend]
    text = error_of(cls, {"backend": backend, key: "https://ca.example/?token=SECRETQS", **extra})
    assert "query string" in text and "SECRETQS" not in text


@pytest.mark.parametrize("url", ["http://127.0.0.1:8888", "http://[::1]:8888", "https://ca.test"])
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    assert CfsslIssuer.from_config({"backend": "cfssl", "url": url}) is not None


def test_promote_refuses_a_plain_http_api_base(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    web1: {connection: local, cloudflare_zone: z1}\n")
    code = main(
        ["promote", "-i", str(inv), "--zone", "z1", "--api-base", "http://attacker.example",
         "--token-env", "CF_EDGE_TOKEN"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "would send credentials in clear text" in err and TOKEN not in err


@pytest.mark.parametrize(
    "field", ["token_env", "origin_ca_key_env", "token_file", "origin_ca_key_file"]
)
def test_a_token_pasted_into_a_name_field_is_not_echoed(field: str) -> None:
    config = {"backend": "cloudflare", field: TOKEN}
    text = error_of(CloudflareIssuer, config)
    assert "value not shown" in text


def test_an_env_name_that_is_unset_is_not_echoed() -> None:
    text = error_of(CloudflareIssuer, {"token_env": "EABSECRETVALUE_NOT_A_VAR"})
    assert "EABSECRETVALUE" not in text and "named by token_env is unset" in text


def test_a_token_file_readable_by_others_is_refused_not_warned(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o640)
    text = error_of(CloudflareIssuer, {"token_file": str(token)})
    assert text == (
        f"issuer cloudflare: token_file {token} is open to group or others (mode 0640); "
        f"chmod 600 {token}"
    )
    token.chmod(0o600)
    assert CloudflareIssuer.from_config({"token_file": str(token)}).config.credential


def test_a_fifo_as_token_file_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    assert "is not a regular file" in error_of(CloudflareIssuer, {"token_file": str(fifo)})


@pytest.mark.parametrize("var", ["password_env", "become_password_env"])
def test_a_password_pasted_into_an_inventory_env_field_is_not_echoed(var: str) -> None:
    with pytest.raises(InventoryError) as exc:
        connection_spec(Host(name="h1", vars={var: "hunter2!Passw0rd"}))
    assert "hunter2" not in str(exc.value) and "value not shown" in str(exc.value)


def test_the_dns01_api_url_is_https_too() -> None:
    config = {
        "backend": "acme",
        "directory": "https://acme.test/dir",
        "challenge": "dns-01",
        "dns_token_env": "CF_EDGE_TOKEN",
        "dns_zone": "example.com",
    }
    text = error_of(AcmeIssuer, {**config, "dns_api": "http://attacker.example"})
    assert "issuer acme: dns_api http://attacker.example would send credentials" in text
    assert AcmeIssuer.from_config({**config, "dns_api": "https://api.cloudflare.com/client/v4"})
