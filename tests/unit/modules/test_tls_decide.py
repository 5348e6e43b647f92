"""The TLS step's decisions as data: gathered facts in, a Transaction (and its changes) out.

Each scenario names an origin's state and what the step must decide for it; the expected
changes are listed in the order the transaction script performs them, as kind + path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agent.errors import IssuerError
from agent.modules.args import check_args
from agent.modules.base import Context, ModuleError
from agent.modules.tls import services
from agent.modules.tls.decide import Desired, Renewal, decide, desired, target_address
from agent.modules.tls.facts import OriginFacts
from agent.modules.tls.origin import TlsOriginModule
from agent.modules.tls.parts import CertificateModule, TlsSiteModule
from agent.modules.tls.transaction import PENDING_VERSION, Transaction
from agent.transport.changes import Change, MakeDir, RemovePath, RunCommand, SwapSymlink, WriteFile
from tests.tlscerts import make_leaf

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NAMES = ("a.example", "www.a.example")
ROOT = "/etc/ssl/origin-agent/a.example"
SITE = "/etc/nginx/sites-available/a.example.conf"
ENABLED = "/etc/nginx/sites-enabled/a.example.conf"
POLICY = "/etc/nginx/conf.d/origin-agent-tls.conf"
RENEWAL = Renewal(key_type="ec256", issuer_id="i1", renew_before=timedelta(days=30))


def params(**kw: Any) -> dict[str, Any]:
    full, problems = check_args(TlsOriginModule, {"names": list(NAMES), **kw})
    assert not problems
    return full


def want(server: str = "nginx", **kw: Any) -> Desired:
    return desired(params(**kw), {}, "web1", server)


def pubkey_pem(kind: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1()) if kind == "ec256" else None
    if key is None:
        return (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass(frozen=True)
class Origin:
    """An origin's state, as the gather step would report it."""

    site_done: bool = True  # site, policy and enable link as desired
    days_left: int | None = 80  # None: no certificate
    names: tuple[str, ...] = NAMES
    issuer_id: str = "i1"
    next_key: str | None = None  # key type of a pre-made next key
    stale_policy: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def facts(self, w: Desired) -> OriginFacts:
        files: dict[str, bytes | None] = {f.path: None for f in w.files}
        links: dict[str, str | None] = {x.path: None for x in w.links}
        if self.site_done:
            files = {f.path: f.data for f in w.files}
            links = {x.path: x.target for x in w.links}
        if self.stale_policy:
            files[POLICY] = b"# an older policy\n"
        fullchain = None
        if self.days_left is not None:
            leaf = make_leaf(
                list(self.names), start=NOW - timedelta(days=10), days=10 + self.days_left
            )
            fullchain = leaf.cert_pem
        return OriginFacts(
            servers=("nginx",),
            current_version="20261101T000000Z-0000aaaaaaa" if fullchain else None,
            fullchain_pem=fullchain,
            meta={"issuer_id": self.issuer_id},
            next_pubkey_pem=pubkey_pem(self.next_key) if self.next_key else None,
            files=files,
            links=links,
            **self.extra,
        )


def kinds(changes: tuple[Change, ...]) -> list[tuple[str, str]]:
    out = []
    for c in changes:
        if isinstance(c, WriteFile | MakeDir | SwapSymlink | RemovePath):
            out.append((type(c).__name__, c.path.replace(ROOT, "ROOT")))
        elif isinstance(c, RunCommand):
            out.append(("RunCommand", c.argv[1] if len(c.argv) > 1 else c.argv[0]))
    return out


NEW = f"ROOT/{PENDING_VERSION}"
CERT_STEPS = [
    ("MakeDir", NEW),
    ("WriteFile", f"{NEW}/privkey.pem"),
    ("WriteFile", f"{NEW}/fullchain.pem"),
]
SITE_STEPS = [("WriteFile", SITE), ("WriteFile", POLICY), ("SwapSymlink", ENABLED)]
SWITCH = [("SwapSymlink", "ROOT/current")]
TEST_RELOAD = [("RunCommand", "-t"), ("RunCommand", "-s")]
NEXT = [("WriteFile", "ROOT/next/privkey.pem"), ("WriteFile", "ROOT/next/pubkey.pem")]

SCENARIOS: dict[str, tuple[Origin, Renewal | None, str | None, list[tuple[str, str]]]] = {
    "first deploy": (
        Origin(site_done=False, days_left=None),
        RENEWAL,
        "no certificate yet",
        CERT_STEPS + SITE_STEPS + SWITCH + TEST_RELOAD,
    ),
    "renewal due": (
        Origin(days_left=10),
        RENEWAL,
        "expires in 10 days",
        CERT_STEPS + SWITCH + TEST_RELOAD,
    ),
    "names changed": (
        Origin(names=("a.example",)),
        RENEWAL,
        "names changed",
        CERT_STEPS + SWITCH + TEST_RELOAD,
    ),
    "issuer changed": (
        Origin(issuer_id="other"),
        RENEWAL,
        "issuer changed",
        CERT_STEPS + SWITCH + TEST_RELOAD,
    ),
    "site change only": (
        Origin(stale_policy=True),
        RENEWAL,
        None,
        [("WriteFile", POLICY)] + TEST_RELOAD,
    ),
    "key pre-made": (
        Origin(days_left=5, next_key="ec256"),
        RENEWAL,
        "expires in 5 days",
        CERT_STEPS + SWITCH + TEST_RELOAD + NEXT,
    ),
    "next key of another type": (
        Origin(days_left=5, next_key="rsa2048"),
        RENEWAL,
        "expires in 5 days",
        CERT_STEPS + SWITCH + TEST_RELOAD + NEXT,
    ),
    "site part: a missing certificate is not its business": (
        Origin(site_done=False, days_left=None),
        None,
        None,
        SITE_STEPS + TEST_RELOAD,
    ),
    "two thirds of the lifetime used (the default rule)": (
        Origin(days_left=5),  # a 15-day certificate issued 10 days ago
        Renewal(key_type="ec256", issuer_id="i1"),
        "expires in 5 days",
        CERT_STEPS + SWITCH + TEST_RELOAD,
    ),
    "a third of the lifetime used (the default rule)": (
        Origin(days_left=80),  # a 90-day certificate issued 10 days ago
        Renewal(key_type="ec256", issuer_id="i1"),
        None,
        [],
    ),
    "renew_before 0 renews only at expiry": (
        Origin(days_left=1),
        Renewal(key_type="ec256", issuer_id="i1", renew_before=timedelta(0)),
        None,
        [],
    ),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_decide_scenarios(scenario: str) -> None:
    origin, renewal, reason, steps = SCENARIOS[scenario]
    w = want()
    transaction = decide(w, origin.facts(w), NOW, host="web1", renewal=renewal)
    if not steps:
        assert transaction is None
        return
    assert transaction is not None
    assert (transaction.renew or "").split(";")[0] == (reason or "")  # then the rule, after ";"
    assert kinds(transaction.changes()) == steps


def test_an_origin_in_state_needs_no_transaction() -> None:
    w = want()
    assert decide(w, Origin().facts(w), NOW, host="web1", renewal=RENEWAL) is None


def test_pre_made_next_key_is_consumed_only_when_of_the_key_type() -> None:
    w = want()
    same = decide(w, Origin(days_left=5, next_key="ec256").facts(w), NOW, host="w", renewal=RENEWAL)
    other = decide(
        w, Origin(days_left=5, next_key="rsa2048").facts(w), NOW, host="w", renewal=RENEWAL
    )
    assert same is not None and same.consume_next and same.make_next
    assert other is not None and not other.consume_next and other.make_next


def test_a_broken_next_key_stops_the_decision() -> None:
    w = want()
    facts = Origin(days_left=5).facts(w)
    broken = OriginFacts(**{**facts.__dict__, "next_pubkey_pem": "not a key"})
    with pytest.raises(ModuleError, match="next/pubkey.pem is not a PEM public key"):
        decide(w, broken, NOW, host="web1", renewal=RENEWAL)


def test_apache_enable_commands_run_only_when_their_checks_fail() -> None:
    w = want("apache")
    base = Origin().facts(w)
    undone = OriginFacts(**{**base.__dict__, "checks": (False, True, True)})
    done = OriginFacts(**{**base.__dict__, "checks": (True, True, True)})
    t = decide(w, undone, NOW, host="w", renewal=RENEWAL)
    assert t is not None and [c.argv[-2:] for c in t.commands] == [w.commands[0].argv[-2:]]
    assert t.commands[0].unless  # the script skips it again if done meanwhile
    assert decide(w, done, NOW, host="w", renewal=RENEWAL) is None


def test_diff_shows_what_the_origin_holds_now() -> None:
    w = want()
    t = decide(w, Origin(stale_policy=True).facts(w), NOW, host="w", renewal=RENEWAL)
    assert t is not None
    (policy,) = [c for c in t.changes() if isinstance(c, WriteFile)]
    assert "-# an older policy" in policy.diff()


def test_issued_certificate_fills_the_pending_version() -> None:
    w = want()
    t = decide(w, Origin(days_left=3).facts(w), NOW, host="w", renewal=RENEWAL)
    assert t is not None and t.pending
    version = "20261201T120000Z-00000abcdef0"
    done = t.with_certificate(version, (WriteFile("privkey.pem", b"k", 0o600),))
    assert not done.pending
    paths = [c.path for c in done.changes() if isinstance(c, WriteFile | MakeDir)]
    assert f"{ROOT}/{version}" in paths and f"{ROOT}/{version}/privkey.pem" in paths
    secret = [c for c in done.changes() if isinstance(c, WriteFile) and c.secret]
    assert [c.path for c in secret] == [f"{ROOT}/{version}/privkey.pem"]


def test_a_pending_transaction_cannot_be_applied() -> None:
    from agent.modules.tls import txn

    w = want()
    t = decide(w, Origin(days_left=3).facts(w), NOW, host="w", renewal=RENEWAL)
    assert isinstance(t, Transaction)
    with pytest.raises(ValueError, match="not issued yet"):
        txn.apply_script(t)


def test_one_address_rule() -> None:
    assert target_address({}, "web1") == "web1"
    assert target_address({"listen_address": "10.0.0.5"}, "web1") == "10.0.0.5"
    assert target_address({"host": "h", "listen_address": "10.0.0.5"}, "web1") == "h"
    assert target_address({"ansible_host": "192.0.2.1", "host": "h"}, "web1") == "192.0.2.1"
    assert target_address({"ansible_host": "192.0.2.1"}, "web1", connected="::1") == "::1"
    assert target_address({"listen_address": "x"}, "w", explicit="192.0.2.9") == "192.0.2.9"


def ctx(variables: dict[str, Any]) -> Context:
    return Context(host="web1", now=NOW, vars=variables)


def test_tls_site_needs_no_issuer() -> None:
    w = want()
    facts = Origin(site_done=False, days_left=None).facts(w)
    module = TlsSiteModule()
    p, problems = check_args(TlsSiteModule, {"names": list(NAMES)})
    assert not problems
    changes = module.plan(p, facts, ctx({}))
    assert [type(c).__name__ for c in changes][:3] == ["WriteFile", "WriteFile", "SwapSymlink"]


def test_certificate_module_still_needs_an_issuer() -> None:
    w = want()
    facts = Origin(days_left=None).facts(w)
    p, _ = check_args(CertificateModule, {"names": list(NAMES)})
    with pytest.raises(IssuerError, match="'issuer' must be a mapping"):
        CertificateModule().plan(p, facts, ctx({}))


def test_check_mode_plan_lists_a_renewal_from_the_issuer_config(tmp_path: Path) -> None:
    services.configure(state_dir=str(tmp_path / "state"), base_dir=str(tmp_path))
    w = want()
    facts = Origin(days_left=2, issuer_id=services.issuer_id({"backend": "selfsigned"})).facts(w)
    p = params()
    changes = TlsOriginModule().plan(p, facts, ctx({"issuer": {"backend": "selfsigned"}}))
    assert kinds(tuple(changes)) == CERT_STEPS + SWITCH + TEST_RELOAD


def test_issuer_id_is_the_same_for_one_ca_however_its_path_is_written(tmp_path: Path) -> None:
    (tmp_path / "inv" / "ca").mkdir(parents=True)
    services.configure(base_dir=str(tmp_path / "inv"))
    relative = services.issuer_id({"backend": "localca", "dir": "./ca"})
    absolute = services.issuer_id({"backend": "localca", "dir": str(tmp_path / "inv" / "ca")})
    assert relative == absolute


def test_issuer_id_differs_for_two_inventories_whose_relative_ca_differs(tmp_path: Path) -> None:
    config = {"backend": "localca", "dir": "./ca"}
    services.configure(base_dir=str(tmp_path / "one"))
    one = services.issuer_id(config)
    services.configure(base_dir=str(tmp_path / "two"))
    two = services.issuer_id(config)
    assert one != two


def test_a_certificate_recorded_with_the_earlier_issuer_id_is_not_renewed() -> None:
    config = {"backend": "localca", "dir": "./ca"}
    legacy = services.legacy_issuer_id(config)
    renewal = Renewal(key_type="ec256", issuer_id="new-id", legacy_issuer_id=legacy)
    w = want()
    assert decide(w, Origin(issuer_id=legacy).facts(w), NOW, host="w", renewal=renewal) is None
    moved = decide(w, Origin(issuer_id="x").facts(w), NOW, host="w", renewal=renewal)
    assert moved is not None and moved.renew == "issuer changed"
    assert json.loads(json.dumps(config)) == config  # ids hash plain data


@pytest.mark.parametrize("value", [5, "a.example", [1, 2], {"a": 1}])
def test_tls_names_must_be_a_list_of_names(value: object) -> None:
    with pytest.raises(ModuleError, match="tls_names must be a list of names"):
        desired(params(names=None), {"tls_names": value}, "web1", "nginx")


def test_a_site_template_cannot_reach_python_internals(tmp_path: Path) -> None:
    from agent.errors import ServerConfigError

    template = tmp_path / "site.conf.j2"
    template.write_text("server { # {{ ''.__class__.__mro__[1].__subclasses__() }}\n}\n")
    with pytest.raises(ServerConfigError, match="site.conf.j2") as caught:
        desired(params(site_template=str(template)), {}, "web1", "nginx")
    assert "unsafe" in str(caught.value) or "access to attribute" in str(caught.value)
