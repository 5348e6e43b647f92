"""The TLS step's pure parts: when to renew, reading the gather script's output, the transaction
script's quoting, and the status report's thresholds and rendering."""

from __future__ import annotations

import base64
import io
import shlex
import tarfile
from datetime import UTC, datetime, timedelta

import pytest

from agent.errors import ValidationError
from agent.jobs.status import StatusRow, failing, urgency
from agent.jobs.status_render import table, to_html, to_json
from agent.modules.tls import facts, txn
from agent.modules.tls.decide import renewal_reason
from agent.pki.inspect import CertInfo
from agent.transport.changes import WriteFile
from tests.tarstream import tar_b64

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def info(days_left: int, names: tuple[str, ...] = ("a.example",), key: str = "ec256") -> CertInfo:
    return CertInfo(
        subject="CN=a.example",
        common_name="a.example",
        dns_names=names,
        ip_addresses=(),
        issuer="CN=CA",
        serial="01",
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=days_left),
        key_type=key,
        fingerprint_sha256="00",
        pin_sha256="p",
        is_ca=False,
        self_issued=False,
    )


def reason(cert: CertInfo | None, **kw: object) -> str | None:
    args: dict[str, object] = {
        "names": ("a.example",),
        "key_type": "ec256",
        "issuer_id": "i1",
        "meta": {"issuer_id": "i1"},
        "now": NOW,
        "renew_before": timedelta(days=30),
        "force": False,
    }
    args.update(kw)
    return renewal_reason(cert, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cert", "kw", "expected"),
    [
        (None, {}, "no certificate yet"),
        (info(80), {}, None),
        (info(80), {"force": True}, "forced"),
        (info(29), {}, "expires in 29 days"),
        (info(-1), {}, "expired"),
        (info(80, names=("b.example",)), {}, "names changed"),
        (info(80, key="rsa2048"), {}, "key type changed"),
        (info(80), {"meta": {"issuer_id": "other"}}, "issuer changed"),
        (info(80, names=("A.Example",)), {}, None),
    ],
    ids=["missing", "fresh", "forced", "due", "expired", "names", "key-type", "issuer", "case"],
)
def test_renewal_is_needed_only_for_a_reason(
    cert: CertInfo | None, kw: dict[str, object], expected: str | None
) -> None:
    got = reason(cert, **kw)
    assert (got or "").split(";")[0] == (expected or "")  # then the renewal rule, after ";"


def test_gather_output_is_parsed_and_file_contents_cannot_fake_a_section() -> None:
    site = b"server {}\n@@running\nno\n"
    root = "/etc/ssl/origin-agent/a"
    out = "\n".join(
        [
            f"@@root {root}",
            "@@detect",
            "/usr/sbin/nginx",
            "/etc/nginx",
            "@@systemd",
            "@@leftovers",
            "2",
            "@@file /etc/nginx/sites-available/a.conf",
            "present",
            "@@file /etc/nginx/nginx.conf",
            "@@file /etc/nginx/unreadable.conf",
            "present",
            "@@link /etc/nginx/sites-enabled/a.conf",
            "@@link /etc/nginx/sites-enabled/b.conf",
            "@@check 0",
            "yes",
            "@@tar",
            tar_b64(
                (f"{root}/current", "20260101T000000Z-abcd"),
                (f"{root}/current/meta.json", b'{"issuer_id": "x"}'),
                ("/etc/nginx/sites-available/a.conf", site),
                ("/etc/nginx/sites-enabled/a.conf", "/etc/nginx/sites-available/a.conf"),
            ),
            "@@running",
            "yes",
        ]
    )
    got = facts.parse(
        out, detect_parser=lambda text: ("nginx",) if "/usr/sbin/nginx" in text else ()
    )
    assert got.servers == ("nginx",) and got.systemd is False and got.server_running is True
    assert got.current_version == "20260101T000000Z-abcd" and got.fullchain_pem is None
    assert got.meta == {"issuer_id": "x"} and got.leftovers == 2 and got.next_pubkey_pem is None
    assert got.files == {
        "/etc/nginx/sites-available/a.conf": site,
        "/etc/nginx/nginx.conf": None,
        "/etc/nginx/unreadable.conf": b"",
    }
    assert got.links == {
        "/etc/nginx/sites-enabled/a.conf": "/etc/nginx/sites-available/a.conf",
        "/etc/nginx/sites-enabled/b.conf": None,
    }
    assert got.checks == (True,)


def test_a_damaged_tar_in_the_gather_output_reads_as_nothing_present() -> None:
    root = "/etc/ssl/origin-agent/a"
    good = tar_b64((f"{root}/current", "V1"))
    for body in (
        "not base64 !!",
        base64.b64encode(b"\x00" * 1024).decode(),
        good[:100],
    ):  # cut inside the header
        got = facts.parse(f"@@root {root}\n@@file /etc/x\npresent\n@@tar\n{body}\n@@running\n")
        assert got.current_version is None and got.files == {"/etc/x": b""}


SERVER = txn.server_commands(
    ["nginx", "-t"],
    ["nginx", "-s", "reload"],
    ["systemctl", "reload", "nginx"],
    ["nginx"],
    ["systemctl", "start", "nginx"],
)


@pytest.mark.parametrize("name", ["a b", "a;b", "a\nb", "../x", "a/b", "$(x)", ""])
def test_a_site_name_that_is_not_a_plain_file_name_is_rejected(name: str) -> None:
    with pytest.raises(ValidationError):
        txn.Transaction(name=name, server=SERVER)


def test_paths_with_shell_characters_never_reach_the_script() -> None:
    for path in ("/etc/x;rm -rf /", "/etc/x\n", "/etc/$(id)", "/etc/../x", "relative"):
        with pytest.raises(ValidationError):
            txn.Transaction(name="a", server=SERVER, files=(WriteFile(path, b""),))


def test_the_script_quotes_every_value_and_the_key_travels_only_in_the_payload() -> None:
    key = b"-----BEGIN PRIVATE KEY-----\nSECRETKEYBYTES\n-----END PRIVATE KEY-----\n"
    t = txn.Transaction(
        name="a.example",
        server=SERVER,
        version="20260101T000000Z-abcd",
        version_files=(WriteFile("privkey.pem", key, 0o600),),
        files=(WriteFile("/etc/nginx/sites-available/a.example.conf", b"x"),),
    )
    script = txn.apply_script(t)
    assert b"SECRETKEYBYTES" not in script.encode()
    assert "install_file 0 /etc/nginx/sites-available/a.example.conf 0644" in script
    assert f"ROOT={shlex.quote('/etc/ssl/origin-agent/a.example')}" in script
    with tarfile.open(fileobj=io.BytesIO(txn.payload(t))) as tar:
        member = tar.getmember(f"{txn.PAYLOAD_DIR}/v/privkey.pem")
        assert member.mode == 0o600 and tar.extractfile(member).read() == key  # type: ignore[union-attr]
        link = tar.getmember(f"{txn.PAYLOAD_DIR}/current")  # renamed over NAME/current
        assert link.issym() and link.linkname == t.version


def test_outcomes_are_read_from_the_last_result_line() -> None:
    assert txn.parse_outcome("noise\n@@result ok V1 V0\n").detail == ("V1", "V0")
    bad = txn.parse_outcome("@@result test_failed nginx: [emerg] unknown directive\n")
    assert bad.status == "test_failed" and "unknown directive" in bad.message
    assert txn.parse_outcome("killed midway").status == "unknown"


def row(host: str, mode: str, days: int | None) -> StatusRow:
    return StatusRow(
        host=host,
        name=f"{host}.example",
        address="127.0.0.1",
        port=443,
        mode=mode,
        days_left=days,
        not_after=NOW + timedelta(days=days) if days is not None else None,
        reasons=() if mode == "strict" else ("self-signed",),
    )


def test_status_rows_sort_most_urgent_first() -> None:
    rows = [
        row("c", "strict", 80),
        row("a", "flexible", None),
        row("b", "strict", 10),
        row("d", "full", 50),
    ]
    assert [r.host for r in sorted(rows, key=urgency)] == ["a", "d", "b", "c"]


def test_thresholds_name_each_host_that_crosses_them() -> None:
    rows = [row("a", "strict", 80), row("b", "strict", 10), row("c", "full", 60)]
    assert failing(rows, fail_within=None, require_mode=None) == []
    assert failing(rows, fail_within=30, require_mode=None) == [
        "b: b.example: 10 days left (limit 30)"
    ]
    problems = failing(rows, fail_within=None, require_mode="strict")
    assert problems == ["c: c.example: ready for Full, not Full (strict): self-signed"]


def test_reports_escape_what_origins_send() -> None:
    evil = StatusRow(
        host="h",
        name="h.example",
        address="127.0.0.1",
        port=443,
        mode="full",
        reasons=("<script>alert(1)</script>",),
        issuer="CN=<b>x</b>",
    )
    page = to_html([evil], NOW)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert '"mode": "full"' in to_json([evil], NOW)
    assert "h.example" in table([evil])
