"""Config parsing of the remote backends (acme, cfssl, cloudflare): secrets only from env vars or
files, unknown keys named, every bad value one clear line that never shows a secret."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.errors import IssuerError
from agent.pki.issuers.acme import AcmeAccountStore, AcmeIssuer, MemoryAccountStore
from agent.pki.issuers.cfssl import CfsslIssuer
from agent.pki.issuers.cloudflare import CloudflareIssuer, validity_days
from agent.pki.issuers.http import RetryPolicy
from agent.state.store import Store

SECRET = "s3cr3t-value-4242"
BASE = {
    "acme": {"directory": "https://acme.example.test/dir"},
    "cfssl": {"url": "http://127.0.0.1:8888"},
    "cloudflare": {"token_env": "CF_UNIT_TOKEN"},
}
CLASSES: dict[str, Any] = {"acme": AcmeIssuer, "cfssl": CfsslIssuer, "cloudflare": CloudflareIssuer}


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CF_UNIT_TOKEN", SECRET)


def build(backend: str, **extra: Any) -> Any:
    return CLASSES[backend].from_config({"backend": backend, **BASE[backend], **extra})


def error_of(backend: str, **extra: Any) -> str:
    with pytest.raises(IssuerError) as err:
        build(backend, **extra)
    assert err.value.backend == backend
    text = str(err.value)
    assert "\n" not in text and SECRET not in text
    return text


@pytest.mark.parametrize(
    "backend, key",
    [
        ("acme", "eab_hmac_key"),
        ("cfssl", "auth_key"),
        ("cloudflare", "token"),
        ("cloudflare", "origin_ca_key"),
    ],
)
def test_inline_secret_is_refused_and_not_echoed(backend: str, key: str) -> None:
    assert error_of(backend, **{key: SECRET}) == (
        f"issuer {backend}: inline secret {key!r} refused; put it in an environment variable "
        f"or a file and name it with {key}_env or {key}_file"
    )


def test_inline_secret_under_another_name_lists_the_secret_keys() -> None:
    assert error_of("cloudflare", api_key=SECRET) == (
        "issuer cloudflare: inline secret 'api_key' refused; put it in an environment variable "
        "or a file and name it with one of origin_ca_key_env, origin_ca_key_file, token_env, "
        "token_file"
    )


def test_credentials_in_a_url_are_refused() -> None:
    text = error_of("cfssl", url=f"http://agent:{SECRET}@127.0.0.1:8888")
    assert text == (
        "issuer cfssl: url must not carry credentials; name them with the *_env or *_file keys"
    )


@pytest.mark.parametrize("backend", sorted(BASE))
def test_unknown_key_lists_accepted_keys(backend: str) -> None:
    text = error_of(backend, profle="server")
    assert text.startswith(f"issuer {backend}: unknown key 'profle'; accepted keys: ")
    assert "retries" in text and "backoff" in text


@pytest.mark.parametrize("backend, key", [("acme", "directory"), ("cfssl", "url")])
def test_missing_required_key(backend: str, key: str) -> None:
    with pytest.raises(IssuerError, match=f"missing key '{key}'"):
        CLASSES[backend].from_config({"backend": backend})


@pytest.mark.parametrize(
    "backend, key, value",
    [
        ("acme", "directory", "ftp://acme.example.test/dir"),
        ("cfssl", "url", "127.0.0.1:8888"),
        ("cloudflare", "base_url", "api.cloudflare.com"),
    ],
)
def test_non_http_urls_are_refused(backend: str, key: str, value: str) -> None:
    assert f"{key} must be an https:// URL with a host" in error_of(backend, **{key: value})


def test_secret_from_file_is_stripped_and_masked(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(SECRET + "\n")
    token.chmod(0o600)
    issuer = CloudflareIssuer.from_config({"token_file": str(token)})
    assert issuer.config.credential.reveal() == SECRET
    for text in (repr(issuer), repr(issuer.config), str(issuer.config), repr(issuer.client)):
        assert SECRET not in text


def test_secret_env_and_file_together_is_an_error(tmp_path: Path) -> None:
    assert "set either token_env or token_file for the API token, not both" in error_of(
        "cloudflare", token_file=str(tmp_path / "x")
    )


def test_unset_environment_variable_is_not_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CF_UNIT_TOKEN")
    assert error_of("cloudflare") == (
        "issuer cloudflare: the environment variable named by token_env is unset or empty; "
        "export the API token in it"
    )


def test_unreadable_and_empty_secret_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    assert "cannot read auth_key_file: no such file (value not shown)" in error_of(
        "cfssl", auth_key_file=str(missing)
    )
    assert f"auth_key_file {empty} is empty" in error_of("cfssl", auth_key_file=str(empty))


def test_cfssl_auth_key_must_be_hex(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFSSL_UNIT_KEY", SECRET)
    assert error_of("cfssl", auth_key_env="CFSSL_UNIT_KEY") == (
        "issuer cfssl: the cfssl auth key is not a hex string"
    )


def test_cloudflare_needs_exactly_one_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(IssuerError, match="no credential; set token_env or token_file"):
        CloudflareIssuer.from_config({})
    monkeypatch.setenv("CF_UNIT_KEY", "v1.0-abc")
    assert "either an API token or an Origin CA key, not both" in error_of(
        "cloudflare", origin_ca_key_env="CF_UNIT_KEY"
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            {"request_type": "keyless-certificate"},
            "request_type 'keyless-certificate' is not one of",
        ),
        ({"requested_validity": 60}, "requested_validity 60 is not one of 7, 30, 90"),
        ({"zone_id": "../../zones"}, "invalid zone_id"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"retries": 50}, "retries must be an integer from 0 to 10"),
        ({"backoff": "soon"}, "backoff must be a number of seconds"),
    ],
)
def test_cloudflare_bad_values(extra: dict[str, Any], message: str) -> None:
    assert message in error_of("cloudflare", **extra)


@pytest.mark.parametrize(
    "days, expected",
    [(1, 7), (7, 7), (8, 30), (90, 90), (91, 365), (400, 730), (5475, 5475), (9000, 5475)],
)
def test_cloudflare_validity_is_the_smallest_choice_covering_the_request(
    days: int, expected: int
) -> None:
    assert validity_days(days) == expected


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"eab_kid": "kid-1"}, "external account binding needs both eab_kid and an EAB HMAC key"),
        ({"key_type": "dsa"}, "key_type 'dsa' is not one of ec-p256, ec-p384, rsa-2048"),
        ({"email": "ops at example"}, "email 'ops at example' is not an e-mail address"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle '/nonexistent/ca.pem' is not a readable"),
    ],
)
def test_acme_bad_values(extra: dict[str, Any], message: str) -> None:
    assert message in error_of("acme", **extra)


def test_acme_eab_key_from_env_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EAB_UNIT", SECRET)
    issuer = build("acme", eab_kid="kid-1", eab_hmac_key_env="EAB_UNIT")
    assert issuer.config.eab_hmac_key.reveal() == SECRET
    assert SECRET not in repr(issuer.config) + repr(issuer)


def test_acme_state_must_be_an_account_store(tmp_path: Path) -> None:
    with Store(tmp_path / "state") as store:
        assert isinstance(store, AcmeAccountStore)
        assert AcmeIssuer.from_config(BASE["acme"], state=store).store is store
    assert isinstance(MemoryAccountStore(), AcmeAccountStore)
    with pytest.raises(TypeError):
        AcmeIssuer.from_config(BASE["acme"], state=object())


def test_retry_policy_delays_grow_and_are_capped() -> None:
    assert RetryPolicy(attempts=5, backoff=1, factor=2, max_delay=5).delays() == [1, 2, 4, 5]
    assert RetryPolicy.from_config({"retries": 0}, backend="x").delays() == []
    assert RetryPolicy.from_config({}, backend="x") == RetryPolicy(attempts=4, backoff=1.0)


def test_config_must_be_a_mapping() -> None:
    with pytest.raises(IssuerError, match="issuer config must be a mapping, not list"):
        CfsslIssuer.from_config(["url"])  # type: ignore[arg-type]


def test_registry_builds_each_backend_by_name() -> None:
    from agent.pki.issuers.base import REGISTRY

    for name in BASE:
        cls = REGISTRY[name]()
        assert cls.name == name and issubclass(cls, CLASSES[name])
    assert os.environ["CF_UNIT_TOKEN"] == SECRET
