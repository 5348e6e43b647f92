"""Webhook alerts against a real HTTP receiver on loopback."""

from __future__ import annotations

import socket
import time

from agent.report.events import HostResult, HostUnreachable, RunFinished
from agent.report.notify import Problem, message, post, shown
from tests.receiver import receiver


def _body() -> dict[str, object]:
    return message(
        [Problem("web-3", "failed", "nginx -t failed: <bad> & worse\nsecond line")],
        command="rotate",
        inventory="prod.yml",
        counts={"failed": 1},
        exit_code=1,
        generated_at="2026-12-04T00:00:00+00:00",
    )


def test_message_has_slack_text_and_structured_fields() -> None:
    body = _body()
    text = str(body["text"])
    assert text.splitlines()[0] == "origin-agent rotate on prod.yml: 1 failed"
    assert "- web-3: failed: nginx -t failed: &lt;bad&gt; &amp; worse second line" in text
    fields = body["origin_agent"]
    assert isinstance(fields, dict)
    assert fields["exit_code"] == 1 and fields["problems"][0]["host"] == "web-3"


def test_message_text_is_capped_but_fields_keep_every_problem() -> None:
    many = [Problem(f"h{i}", "unreachable", "timed out") for i in range(50)]
    body = message(many, command="rotate", inventory="i", counts={}, exit_code=3, generated_at="")
    assert len(str(body["text"]).splitlines()) == 1 + 20 + 1
    assert len(body["origin_agent"]["problems"]) == 50  # type: ignore[index]


def test_post_delivers_one_message() -> None:
    with receiver() as rx:
        assert post(rx.url, _body()) is None
    assert len(rx.bodies) == 1 and rx.bodies[0]["text"].startswith("origin-agent rotate")
    assert rx.paths == ["/hooks/T0KEN-secret"]


def test_post_retries_server_errors_then_succeeds() -> None:
    waits: list[float] = []
    with receiver(statuses=[503, 500]) as rx:
        assert post(rx.url, _body(), sleep=waits.append) is None
    assert len(rx.bodies) == 3 and waits == [1.0, 2.0]


def test_post_does_not_retry_a_refused_message_and_hides_the_token() -> None:
    with receiver(statuses=[400]) as rx:
        why = post(rx.url, _body(), sleep=lambda s: None)
    assert len(rx.bodies) == 1
    assert why is not None and "HTTP 400" in why and "T0KEN" not in why and "\n" not in why


def test_dead_receiver_is_a_warning_after_bounded_attempts() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    why = post(f"http://127.0.0.1:{port}/x", _body(), attempts=3, sleep=lambda s: None)
    assert why == f"http://127.0.0.1:{port}/...: notification not delivered (ConnectionError)"
    assert time.monotonic() - start < 2


def test_silent_receiver_times_out() -> None:
    with receiver(delay=3) as rx:
        start = time.monotonic()
        why = post(rx.url, _body(), attempts=2, timeout=0.3, sleep=lambda s: None)
        assert time.monotonic() - start < 1.5
    assert why is not None and "ReadTimeout" in why


def test_shown_url_keeps_scheme_host_and_port_only() -> None:
    assert (
        shown("https://hooks.example.com/services/T/B/SECRET?x=1")
        == "https://hooks.example.com/..."
    )


def test_run_watch_collects_failed_and_unreachable_hosts() -> None:
    from agent.jobs.followup import RunWatch
    from agent.report.events import ListReporter

    inner = ListReporter()
    watch = RunWatch(inner)
    watch.emit(HostUnreachable("h2", "connection refused"))
    watch.emit(
        RunFinished(
            hosts=(
                HostResult("h1", failed=1, error="h1: verification failed"),
                HostResult("h2", unreachable=True, error="connection refused"),
                HostResult("h3", changed=1),
            ),
            exit_code=1,
            elapsed=2.5,
        )
    )
    assert [(p.host, p.kind) for p in watch.problems] == [("h2", "unreachable"), ("h1", "failed")]
    assert watch.elapsed == 2.5 and len(inner.events) == 2
