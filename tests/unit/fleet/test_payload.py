"""Fleet task payloads: slicing, routing by worker_queue, refusing secrets, plain JSON."""

from __future__ import annotations

import json

import pytest

from agent.errors import UsageError
from agent.fleet import payload as wire
from agent.fleet.app import BrokerError, broker_from, safe_url, visibility_timeout
from agent.secret import Secret


def test_a_batch_is_sliced_per_queue_in_order_with_at_most_n_hosts_per_task() -> None:
    pairs = [(f"h{i}", "eu" if i % 3 == 0 else wire.DEFAULT_QUEUE) for i in range(10)]
    got = wire.slices(pairs, 3)
    assert got == [
        wire.Slice("eu", ("h0", "h3", "h6")),
        wire.Slice("eu", ("h9",)),
        wire.Slice(wire.DEFAULT_QUEUE, ("h1", "h2", "h4")),
        wire.Slice(wire.DEFAULT_QUEUE, ("h5", "h7", "h8")),
    ]
    assert sorted(h for s in got for h in s.hosts) == sorted(h for h, _ in pairs)
    with pytest.raises(UsageError):
        wire.slices(pairs, 0)


def test_worker_queue_routes_a_host_and_a_bad_name_is_refused_naming_the_host() -> None:
    assert wire.queue_of("web1", {}) == wire.DEFAULT_QUEUE
    assert wire.queue_of("web1", {"worker_queue": "eu-west.1"}) == "eu-west.1"
    with pytest.raises(UsageError, match="^web1: worker_queue must be a queue name"):
        wire.queue_of("web1", {"worker_queue": "eu;rm -rf /"})
    with pytest.raises(UsageError):
        wire.queue_of("web1", {"worker_queue": ["eu"]})


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"extra_vars": {"k": Secret("s3cret")}}, "task.extra_vars.k is a secret"),
        ({"extra_vars": {"db_password": "hunter2"}}, "task.extra_vars.db_password looks secret"),
        ({"extra_vars": {"api_token": "t"}}, "task.extra_vars.api_token looks secret"),
        (
            {"registered": {"h": {"out": ["-----BEGIN PRIVATE KEY-----\nAAA"]}}},
            "task.registered.h.out[0] holds a private key",
        ),
    ],
)
def test_anything_secret_is_refused_before_it_reaches_the_broker_and_never_echoed(
    payload: dict[str, object], where: str
) -> None:
    with pytest.raises(wire.SecretInPayloadError) as caught:
        wire.encode(payload)
    assert where in str(caught.value)
    assert "hunter2" not in str(caught.value) and "s3cret" not in str(caught.value)


def test_registered_results_travel_with_secret_looking_values_redacted() -> None:
    registered = {
        "out": {"stdout": "fine", "key_pem": "x", "items": ["-----BEGIN EC PRIVATE KEY-----"]},
        "n": 3,
    }
    clean = wire.redact(registered)
    assert clean == {
        "out": {"stdout": "fine", "key_pem": wire.REDACTED, "items": [wire.REDACTED]},
        "n": 3,
    }
    wire.refuse_secrets(clean)  # what redact leaves is sendable


def test_a_payload_is_plain_json_and_round_trips() -> None:
    body = {"hosts": [["a", "d" * 64]], "extra_vars": {"n": 1, "l": [1, "x"]}, "check": False}
    assert wire.decode(wire.encode(body)) == body
    with pytest.raises(UsageError, match="plain JSON"):
        wire.encode({"x": object()})
    with pytest.raises(UsageError, match="plain JSON"):
        wire.encode({"x": float("nan")})
    with pytest.raises(UsageError):
        wire.decode(json.dumps([1]))


def test_the_vars_digest_changes_with_a_var_or_a_group_and_not_with_key_order() -> None:
    one = wire.vars_digest({"a": 1, "b": [2]}, ["all", "web"])
    assert one == wire.vars_digest({"b": [2], "a": 1}, ["web", "all"])
    assert one != wire.vars_digest({"a": 2, "b": [2]}, ["all", "web"])
    assert one != wire.vars_digest({"a": 1, "b": [2]}, ["all"])


def test_broker_urls_are_redis_only_and_their_password_is_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ORIGIN_AGENT_BROKER", raising=False)
    assert safe_url("redis://:pw@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert safe_url("rediss://u:pw@h:1/2") == "rediss://u:***@h:1/2"
    with pytest.raises(BrokerError, match="no broker given") as caught:
        broker_from(None)
    assert caught.value.exit_code == 6
    with pytest.raises(BrokerError) as bad:
        broker_from("amqp://guest:topsecret@h//")
    assert "topsecret" not in str(bad.value)
    monkeypatch.setenv("ORIGIN_AGENT_BROKER", "redis://127.0.0.1:1/0")
    assert broker_from(None) == "redis://127.0.0.1:1/0"
    assert broker_from("rediss://h:2/0") == "rediss://h:2/0"


def test_the_visibility_timeout_outlasts_the_task_by_10_seconds_or_10_percent() -> None:
    assert visibility_timeout(20) == 30
    assert visibility_timeout(600) == 660
