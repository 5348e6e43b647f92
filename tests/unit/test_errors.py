"""Errors users see are one line: where, what, and what to do."""

from __future__ import annotations

from agent.errors import AgentError, CommandError, IssuerError, PlanError, SourcePos, UsageError


def test_an_error_names_its_place_and_gives_one_line() -> None:
    err = PlanError(
        "unknown issuer 'acmee'",
        where=SourcePos("plans/rotate.yml", 14, 9),
        hint="did you mean 'acme'?",
    )
    assert str(err) == "plans/rotate.yml:14:9: unknown issuer 'acmee'; did you mean 'acme'?"


def test_a_multi_line_message_is_folded_into_one_line() -> None:
    assert "\n" not in str(AgentError("first\nsecond", where="web-3"))


def test_errors_carry_their_evidence_as_attributes() -> None:
    err = CommandError(
        "nginx -t failed", host="web-3", argv=["nginx", "-t"], exit_code=1, stderr="x" * 5000
    )
    assert err.argv == ("nginx", "-t") and err.exit_status == 1 and len(err.stderr_tail) == 2000
    assert str(err) == "web-3: nginx -t failed"
    assert str(IssuerError("refused", backend="acme")) == "issuer acme: refused"


def test_usage_errors_exit_2_and_are_value_errors() -> None:
    assert UsageError("bad").exit_code == 2
    assert isinstance(PlanError("x"), ValueError)
