"""ACME dns-01 through the Cloudflare DNS API: real pebble resolving through
pebble-challtestsrv, and the Cloudflare DNS emulator writing the TXT records into it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from agent.errors import IssuerError
from agent.pki.issuers.acme import AcmeIssuer
from agent.pki.issuers.base import IssueRequest
from tests.emulators.cloudflare_dns import CloudflareDnsEmulator
from tests.integration.cas import Pebble, free_port, make_csr, verify_chain

pytestmark = pytest.mark.integration
TOKEN_ENV = "ORIGIN_AGENT_TEST_CF_DNS_TOKEN"


class Env:
    def __init__(self, pebble: Pebble, dns: CloudflareDnsEmulator) -> None:
        self.pebble, self.dns = pebble, dns
        self.root_pem = pebble.root_pem()

    def config(self, **extra: Any) -> dict[str, Any]:
        return {
            "backend": "acme",
            "directory": self.pebble.directory,
            "ca_bundle": str(self.pebble.tls_ca),
            "timeout": 60,
            "challenge": "dns-01",
            "dns_api": self.dns.base_url,
            "dns_token_env": TOKEN_ENV,
            "dns_servers": [f"127.0.0.1:{self.pebble.dns_port}"],
            "dns_wait": 20,
            "retries": 1,
            "backoff": 0.01,
            **extra,
        }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("dns01")
    pebble = Pebble(base, "127.0.0.1", free_port())
    try:
        dns = CloudflareDnsEmulator(
            f"http://127.0.0.1:{pebble.dns_mgmt_port}", ["origin.test", "other.test"]
        )
        os.environ[TOKEN_ENV] = dns.token
        try:
            yield Env(pebble, dns)
        finally:
            os.environ.pop(TOKEN_ENV, None)
            dns.stop()
    finally:
        pebble.stop()


def issue(issuer: AcmeIssuer, names: list[str]) -> str:
    csr, _ = make_csr(names)
    bundle = issuer.issue(IssueRequest(csr_pem=csr, names=tuple(names)))
    return bundle.fullchain_pem


def test_a_wildcard_is_issued_through_txt_records_that_are_removed_afterwards(env: Env) -> None:
    issuer = AcmeIssuer.from_config(env.config())
    names = ["*.h1.origin.test", "h1.origin.test"]  # both answered by one TXT name
    before = len(env.dns.seen)
    chain = issue(issuer, names)
    leaf = x509.load_pem_x509_certificate(chain.encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(names)
    verify_chain(
        chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n",
        chain,
        env.root_pem,
        "x.h1.origin.test",
    )
    calls = [
        c for c in env.dns.seen[before:] if c[1].endswith("dns_records") or "/dns_records/" in c[1]
    ]
    assert [m for m, _ in calls].count("POST") == 2
    assert [m for m, _ in calls].count("DELETE") == 2
    assert env.dns.txt_records() == []
    issuer.close()


def test_the_zone_is_looked_up_by_name_when_not_given(env: Env) -> None:
    issuer = AcmeIssuer.from_config(env.config())
    before = len(env.dns.seen)
    issue(issuer, ["h2.other.test"])
    assert ("GET", "/client/v4/zones") in env.dns.seen[before:]
    assert env.dns.txt_records() == []
    issuer.close()


def test_records_that_never_show_are_removed_and_the_error_is_one_line(env: Env) -> None:
    silent = free_port()  # nothing answers DNS there
    issuer = AcmeIssuer.from_config(
        env.config(dns_servers=[f"127.0.0.1:{silent}"], dns_wait=1, dns_zone="origin.test")
    )
    with pytest.raises(IssuerError) as caught:
        issue(issuer, ["h3.origin.test"])
    text = str(caught.value)
    assert text == (
        f"issuer acme: dns-01: _acme-challenge.h3.origin.test TXT not visible at "
        f"127.0.0.1:{silent} after 1s; check the zone's nameservers (dns_servers) or raise dns_wait"
    )
    assert env.dns.txt_records() == []
    assert env.dns.token not in text
    issuer.close()


KILLED_RUN = """
import sys
from agent.pki.issuers.acme import AcmeIssuer
from agent.pki.issuers.base import IssueRequest
from tests.integration.cas import make_csr
config = {config!r}
csr, _ = make_csr(["h4.origin.test"])
AcmeIssuer.from_config(config).issue(IssueRequest(csr_pem=csr, names=("h4.origin.test",)))
"""


def test_a_run_killed_after_creating_its_record_leaves_none_after_the_next_run(
    env: Env, tmp_path: Path
) -> None:
    hanging = env.config(dns_servers=[f"127.0.0.1:{free_port()}"], dns_wait=300)
    script = tmp_path / "killed_run.py"
    script.write_text(textwrap.dedent(KILLED_RUN.format(config=hanging)))
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not env.dns.txt_records() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [r["name"] for r in env.dns.txt_records()] == ["_acme-challenge.h4.origin.test"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert len(env.dns.txt_records()) == 1  # the killed run could not clean up

    issuer = AcmeIssuer.from_config(env.config())
    issue(issuer, ["h4.origin.test"])
    assert env.dns.txt_records() == []
    issuer.close()
