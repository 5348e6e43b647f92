"""``status`` refuses a host whose issuer config a run would refuse (one line naming the host),
but reports without the issuer's roots when only the secret is missing on this machine."""

from __future__ import annotations

from typing import Any

import pytest

from agent.errors import IssuerError
from agent.inventory import Host
from agent.jobs.status import check_issuer


@pytest.mark.parametrize(
    "config",
    [
        ["selfsigned"],
        {"backend": "nosuch"},
        {"backend": "cloudflare", "token": "inline-secret-value"},
        {"backend": "cloudflare", "token_env": "CF_T", "base_url": "http://169.254.169.254/"},
        {"backend": "cloudflare", "token_env": "not a name!"},
    ],
)
def test_a_wrong_issuer_config_is_one_line_naming_the_host(
    config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CF_T", "t0ken-value")
    with pytest.raises(IssuerError) as err:
        check_issuer(Host("web1", {"issuer": config}))
    text = str(err.value)
    assert "web1" in text and "\n" not in text and "inline-secret-value" not in text


def test_a_secret_missing_on_this_machine_is_not_an_error_for_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CF_UNSET_HERE", raising=False)
    check_issuer(Host("web1", {"issuer": {"backend": "cloudflare", "token_env": "CF_UNSET_HERE"}}))
    check_issuer(
        Host("web1", {"issuer": {"backend": "cloudflare", "token_file": "/nonexistent/t"}})
    )
    check_issuer(Host("web1", {}))
