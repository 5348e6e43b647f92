"""Secrets never show their text."""

from __future__ import annotations

import logging
import pickle

import pytest

from agent.pki.keys import PrivateKey
from agent.secret import Secret


def test_secret_is_masked_in_str_repr_format_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret("hunter2")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").info("token %s %r", secret, secret)
    rendered = [
        str(secret),
        repr(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>20}",
        caplog.text,
        str([secret]),
        str({"k": secret}),
    ]
    for text in rendered:
        assert "hunter2" not in text
    assert secret.reveal() == "hunter2"
    assert secret.reveal_bytes() == b"hunter2"


def test_secret_compares_by_value_and_is_immutable() -> None:
    assert Secret("a") == Secret(b"a")
    assert Secret("a") != Secret("b")
    with pytest.raises(AttributeError):
        Secret("a")._value = "b"


def test_secret_and_private_key_refuse_pickling() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret("x"))
    with pytest.raises(TypeError):
        pickle.dumps(PrivateKey.generate())


def test_private_key_repr_shows_type_and_pin_only(key: PrivateKey) -> None:
    body = key.pem().reveal().splitlines()[1]
    assert body not in repr(key)
    assert repr(key) == f"PrivateKey(ec256, pin={key.pin})"
    assert str(key.pem()) == "******"
