"""Looking from outside after a change: TLS handshakes that must see the deployed certificate,
the SSL mode it is ready for, and the rollback when it is not what was asked for."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.modules.base import Context, ModuleError
from agent.modules.tls import remote
from agent.modules.tls.decide import Desired
from agent.modules.tls.txn import Outcome
from agent.pki import sclient
from agent.pki.inspect import CertInfo
from agent.pki.modes import MODES, ModeVerdict, evaluate
from agent.pki.probe import Served, probe, served_leaf
from agent.transport.base import Connection

STEADY = 3  # consecutive handshakes that must see the deployed certificate
REQUIRE = ("auto", "flexible", "full", "full_pinned", "strict")


def wall_clock(ctx: Context) -> datetime:
    """The time to judge a CA's answer and a served certificate by: now, not the run's start
    (a rolling run over a big fleet lasts longer than any clock-skew allowance). Deciding what
    to renew still uses ``ctx.now``, so a plan is a pure function of its inputs."""
    return max(ctx.now, datetime.now(UTC))


def verify_site(
    address: str,
    port: int,
    names: tuple[str, ...],
    *,
    expect: str | None,
    trust: str,
    pins: tuple[str, ...],
    require: str,
    now: datetime,
    timeout: float,
) -> tuple[str | None, ModeVerdict | None]:
    """Handshake for every name until the deployed certificate is served (bounded), then judge
    the mode. Returns (problem or None, verdict of the last name)."""
    deadline = time.monotonic() + timeout
    verdict: ModeVerdict | None = None
    for name in names:
        served, problem = _steady(address, port, name, expect, deadline)
        if problem is not None:
            return problem, None
        problem, verdict = judge(served, name, trust=trust, pins=pins, require=require, now=now)
        if problem is not None:
            return problem, verdict
    return None, verdict


def judge(
    served: Served,
    name: str,
    *,
    trust: str,
    pins: tuple[str, ...],
    require: str,
    now: datetime,
) -> tuple[str | None, ModeVerdict]:
    """The mode ``served`` is ready for, and the problem when it is below ``require``."""
    verdict = evaluate(served, names=[name], trust_anchors_pem=trust, pins=pins, now=now)
    if require in MODES and not verdict.at_least(require):
        why = "; ".join(verdict.reasons) or verdict.mode
        return f"{name} is ready for {verdict.mode}, not {require}: {why}", verdict
    return None, verdict


def verify_served(
    outputs: Mapping[str, str],
    names: tuple[str, ...],
    *,
    address: str,
    port: int,
    expect: str | None,
    trust: str,
    pins: tuple[str, ...],
    require: str,
    now: datetime,
) -> tuple[str | None, ModeVerdict | None]:
    """:func:`verify_site` for handshakes the origin made itself (``openssl s_client`` output
    per name, from the transaction script)."""
    verdict: ModeVerdict | None = None
    for name in names:
        if name not in outputs:
            return f"the origin did not report a handshake for {name}", None
        served = sclient.parse(outputs[name], address=address, port=port, name=name)
        fp = fingerprint(served)
        if fp is None or (expect is not None and fp != expect):
            what = (
                f"serves {fp[:16]}..."
                if fp
                else f"serves nothing ({served.outcome}: {served.error})"
            )
            seen = f"{address}:{port} (seen from the origin) for {name} {what}"
            return f"{seen}, expected {(expect or '')[:16]}...", None
        problem, verdict = judge(served, name, trust=trust, pins=pins, require=require, now=now)
        if problem is not None:
            return problem, verdict
    return None, verdict


def reachable(address: str, port: int, timeout: float = 2.0) -> str:
    """Whether the controller reaches ``address:port``: "yes", "refused" (the host answered:
    nothing listens, or a firewall rejects) or "no" (timeout, no route)."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return "yes"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "no"


def _steady(
    address: str, port: int, name: str, expect: str | None, deadline: float
) -> tuple[Served, str | None]:
    """Handshakes until ``expect`` (or, when None, any certificate) is served STEADY times in a
    row; a reload leaves old workers answering for a moment. Only the confirming handshake is a
    full :func:`probe` (chain, client-certificate request, ``GET /``); the ones before it just
    look at the leaf (:func:`served_leaf`), and one that does not show what is wanted is made
    again as a full probe, which says what is served instead."""
    streak = 0
    while True:
        budget = max(1.0, min(5.0, deadline - time.monotonic()))
        if streak < STEADY - 1:
            leaf = served_leaf(address, port, name, timeout=budget)
            got = None if leaf is None else hashlib.sha256(leaf).hexdigest()
            if got is not None and (expect is None or got == expect):
                streak += 1
                continue
        served = probe(address, port, name, timeout=budget, http_request=streak == STEADY - 1)
        fp = fingerprint(served)
        streak = streak + 1 if (fp is not None if expect is None else fp == expect) else 0
        if streak >= STEADY:
            return served, None
        if time.monotonic() >= deadline:
            if streak:
                return served, None
            what = (
                f"serves {fp[:16]}..."
                if fp
                else f"serves nothing ({served.outcome}: {served.error})"
            )
            return served, f"{address}:{port} for {name} {what}, expected {(expect or '')[:16]}..."
        if not streak:
            time.sleep(0.05)


def fingerprint(served: Served) -> str | None:
    """SHA-256 of the served leaf (hex), ``None`` when nothing was served."""
    der = served.leaf_der
    return None if der is None else hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class Vantage:
    """Where a deployment is judged from. ``origin_outputs`` are the handshakes the transaction
    script made on the origin (``None`` when it made none); ``controller`` is the address the
    controller probes, ``origin`` the address the origin probed."""

    asked: str  # "auto", "controller" or "origin"
    controller: str
    origin: str
    origin_outputs: Mapping[str, str] | None = None
    before: str = "yes"  # the controller's reachability before the change (reachable())


@dataclass(frozen=True)
class Judgement:
    """What a deployment is judged against."""

    trust: str
    pins: tuple[str, ...]
    require: str
    timeout: float


def verify_or_rollback(
    conn: Connection,
    want: Desired,
    ctx: Context,
    *,
    vantage: Vantage,
    info: CertInfo | None,
    previous: CertInfo | None,
    judgement: Judgement,
    token: str = "",
) -> tuple[ModeVerdict, str]:
    """Verify the deployed state from the controller or, when it cannot reach the origin's
    HTTPS port (or is told so), from the origin; when it fails, roll back this transaction
    (``token``), check the old state is served again and fail the host. A transaction
    another controller applied after ours is not undone: what is served then is judged as
    it is. Returns the verdict and where it was seen from.

    Raises:
        ModuleError: verification failed (the message says what the rollback achieved).
    """
    used = _vantage_used(vantage, want.site.https_port)
    expect = info.fingerprint_sha256 if info else None
    problem, verdict = _check(vantage, used, want, ctx, expect, judgement)
    if problem is None and verdict is not None:
        return verdict, used
    back, restored, said = roll_back(
        conn, want, ctx, vantage if used == "controller" else None, previous, judgement, token
    )
    if back.status == "superseded":  # a later transaction is live: judge what it serves
        problem, verdict = _check(vantage, used, want, ctx, None, judgement)
        if problem is None and verdict is not None:
            return verdict, f"{used}, after a later transaction ({back.message})"
        restored = f"not undone: a later transaction is live ({back.message})"
    server_said = f" ({want.adapter.name} said: {'; '.join(said)})" if said else ""
    raise ModuleError(f"verification failed: {problem}{server_said}", host=ctx.host, hint=restored)


def _check(
    vantage: Vantage,
    used: str,
    want: Desired,
    ctx: Context,
    expect: str | None,
    judgement: Judgement,
) -> tuple[str | None, ModeVerdict | None]:
    """Handshakes from where ``used`` says, judged (``expect`` None: whatever is served)."""
    port = want.site.https_port
    if used == "origin":
        return verify_served(
            vantage.origin_outputs or {},
            want.names,
            address=vantage.origin,
            port=port,
            expect=expect,
            trust=judgement.trust,
            pins=judgement.pins,
            require=judgement.require,
            now=wall_clock(ctx),
        )
    return verify_site(
        vantage.controller,
        port,
        want.names,
        expect=expect,
        trust=judgement.trust,
        pins=judgement.pins,
        require=judgement.require,
        now=wall_clock(ctx),
        timeout=judgement.timeout,
    )


def roll_back(
    conn: Connection,
    want: Desired,
    ctx: Context,
    vantage: Vantage | None,
    previous: CertInfo | None,
    judgement: Judgement,
    token: str = "",
) -> tuple[Outcome, str, list[str]]:
    """Undo transaction ``token`` and say what that achieved, with the server's own error
    lines since the reload; with a controller ``vantage``, check the previous certificate is
    served again."""
    back, said = remote.rollback(conn, want, become=ctx.become, token=token)
    if not back.ok:
        return back, f"rollback failed too ({back.status}: {back.message})", said
    if previous is None or vantage is None:
        return back, "previous certificate restored", said
    again, _ = verify_site(
        vantage.controller,
        want.site.https_port,
        want.names,
        expect=previous.fingerprint_sha256,
        trust="",
        pins=(),
        require="full",
        now=wall_clock(ctx),
        timeout=judgement.timeout,
    )
    if again is not None:
        return back, f"previous certificate restored but not served: {again}", said
    return back, "previous certificate restored", said


def _vantage_used(vantage: Vantage, port: int) -> str:
    if vantage.origin_outputs is None:
        return "controller"
    if vantage.asked == "origin" or vantage.before == "no":
        return "origin"
    # auto, and the port refused before the change (nothing listened yet, or a firewall
    # rejects): the controller judges if it reaches the port now
    return "controller" if reachable(vantage.controller, port) == "yes" else "origin"
