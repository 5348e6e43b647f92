"""Pure parts of opening SSH: ~/.ssh/config precedence, ProxyJump parsing, known_hosts lines,
environment passwords, the connect factory."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import paramiko
import pytest

from agent.errors import ConnectError
from agent.inventory.model import ConnectionSpec
from agent.transport import connect, hostkeys, ssh_connect
from agent.transport.common import sudo_argv
from agent.transport.hostkeys import add_recorded_keys, append_known_host, known_hosts_name
from agent.transport.local import LocalConnection
from agent.transport.quote import join
from agent.transport.ssh_connect import parse_jump, password_from_env, resolve

CONFIG = """
Host web-direct
  ProxyJump none

Host web-*
  User deploy
  Port 2222
  IdentityFile ~/.ssh/web_key
  ProxyJump bastion.example.net

Host *
  IdentityFile ~/.ssh/id_fallback
"""


def config() -> paramiko.SSHConfig:
    return paramiko.SSHConfig.from_text(CONFIG)


def test_ssh_config_fills_only_what_the_inventory_left_default() -> None:
    target = resolve(ConnectionSpec(name="a", address="web-1"), config())
    assert (target.hostname, target.port, target.user) == ("web-1", 2222, "deploy")
    assert target.key_files[0] == str(Path("~/.ssh/web_key").expanduser())
    assert target.proxy_jump == "bastion.example.net"


def test_inventory_values_win_over_ssh_config() -> None:
    spec = ConnectionSpec(name="a", address="web-1", port=22022, user="ops", key_file="/k/id")
    target = resolve(spec, config())
    assert (target.port, target.user, target.key_files) == (22022, "ops", ("/k/id",))


def test_proxy_jump_none_means_direct() -> None:  # first match wins, as in OpenSSH
    assert resolve(ConnectionSpec(name="a", address="web-direct"), config()).proxy_jump == ""


def test_a_config_paramiko_cannot_apply_is_one_connect_error_naming_the_host() -> None:
    broken = paramiko.SSHConfig.from_text("Host web-*\n  Port twenty-two\n")
    with pytest.raises(ConnectError) as err:
        resolve(ConnectionSpec(name="web1", address="web-1"), broken)
    text = str(err.value)
    assert "could not be applied: ValueError" in text and "twenty-two" in text
    assert err.value.host == "web1" and "\n" not in text


def test_hostname_comes_from_config_when_it_is_an_alias() -> None:
    cfg = paramiko.SSHConfig.from_text("Host short\n  HostName 10.0.0.7\n")
    target = resolve(ConnectionSpec(name="a", address="short"), cfg)
    assert (target.hostname, target.port, target.user, target.key_files) == (
        "10.0.0.7",
        22,
        "root",
        (),
    )


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("bastion", (None, "bastion", None)),
        ("ops@bastion:2200", ("ops", "bastion", 2200)),
        ("ops@[2001:db8::1]:2200", ("ops", "2001:db8::1", 2200)),
        ("[2001:db8::1]", (None, "2001:db8::1", None)),
    ],
)
def test_parse_jump(text: str, parts: tuple[str | None, str, int | None]) -> None:
    assert parse_jump(text) == parts


def test_known_hosts_names_follow_openssh() -> None:
    assert known_hosts_name("h", 22) == "h"
    assert known_hosts_name("h", 2222) == "[h]:2222"


def test_append_known_host_creates_0600_and_never_glues_lines(tmp_path: Path) -> None:
    key = paramiko.Ed25519Key.from_private_key_file(str(_keyfile(tmp_path)))
    path = tmp_path / "ssh" / "known_hosts"
    append_known_host(str(path), "[h]:2222", key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.write_text(path.read_text().rstrip("\n"))  # a hand-edited file without final newline
    append_known_host(str(path), "other", key)
    lines = path.read_text().splitlines()
    assert [ln.split()[0] for ln in lines] == ["[h]:2222", "other"]
    hk = paramiko.HostKeys(str(path))
    assert hk.lookup("other") is not None and hk.lookup("[h]:2222") is not None


def test_each_connection_gets_only_its_own_entries_parsed_once_per_file_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = paramiko.Ed25519Key.from_private_key_file(str(_keyfile(tmp_path)))
    other = paramiko.ECDSAKey.generate()
    path = tmp_path / "known_hosts"
    hashed = paramiko.HostKeys.hash_host("10.0.0.9")
    path.write_text(
        f"[127.0.1.5]:2222 {key.get_name()} {key.get_base64()}\n"
        f"{hashed} {other.get_name()} {other.get_base64()}\n"
        f"127.0.1.6 {other.get_name()} {other.get_base64()}\n"
    )
    loads: list[str] = []
    real_read = hostkeys._read_known_hosts
    monkeypatch.setattr(hostkeys, "_read_known_hosts", lambda p: (loads.append(p), real_read(p))[1])
    for _ in range(3):
        got = paramiko.HostKeys()
        add_recorded_keys(got, str(path), known_hosts_name("127.0.1.5", 2222))
        assert list(got.keys()) == ["[127.0.1.5]:2222"]
        assert got.lookup("[127.0.1.5]:2222") == {key.get_name(): key}
    assert len(loads) == 1
    hashed_only = paramiko.HostKeys()
    add_recorded_keys(hashed_only, str(path), "10.0.0.9")  # a hashed entry matches too
    assert hashed_only.lookup("10.0.0.9") == {other.get_name(): other}
    none = paramiko.HostKeys()
    add_recorded_keys(none, str(path), "127.0.1.5")  # port 22: a different name
    add_recorded_keys(none, str(tmp_path / "absent"), "127.0.1.5")
    assert len(none) == 0
    append_known_host(str(path), "127.0.1.5", other)  # the file changed: read again
    again = paramiko.HostKeys()
    add_recorded_keys(again, str(path), "127.0.1.5")
    assert again.lookup("127.0.1.5") == {other.get_name(): other} and len(loads) == 2


def test_recorded_keys_read_like_paramiko_first_key_of_each_type_and_bad_lines_skipped(
    tmp_path: Path,
) -> None:
    first = paramiko.ECDSAKey.generate()
    second = paramiko.ECDSAKey.generate()
    ed = paramiko.Ed25519Key.from_private_key_file(str(_keyfile(tmp_path)))
    path = tmp_path / "known_hosts"
    good = (
        f"other,h\t{first.get_name()} {first.get_base64()} comment\n"
        f"h {second.get_name()} {second.get_base64()}\n"
        f"h {ed.get_name()} {ed.get_base64()}\n"
    )
    path.write_text(good)
    want = paramiko.HostKeys(str(path)).lookup("h")  # paramiko's own reading of the file
    assert want == {first.get_name(): first, ed.get_name(): ed}
    path.write_text(
        "# a comment\n\n"
        f"@cert-authority h {second.get_name()} {second.get_base64()}\n"
        f"h ssh-unknown-type {second.get_base64()}\n"
        f"h {second.get_name()} not*base64\n"
        "h\n"
        f"|1|bad|salt {second.get_name()} {second.get_base64()}\n" + good
    )
    got = paramiko.HostKeys()
    add_recorded_keys(got, str(path), "h")
    assert got.lookup("h") == want


def _keyfile(tmp_path: Path) -> Path:
    import subprocess

    path = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def test_password_comes_only_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert password_from_env("web-1", None) is None
    monkeypatch.setenv("OA_PW_X", "s3cret")
    assert password_from_env("web-1", "OA_PW_X") == "s3cret"
    monkeypatch.delenv("OA_PW_X")
    with pytest.raises(ConnectError) as info:
        password_from_env("web-1", "OA_PW_X")
    assert str(info.value) == "web-1: the environment variable named by password_env is not set"


def test_sudo_prefix_reads_the_password_from_stdin_and_marks_the_start() -> None:
    argv = sudo_argv("www-data", "origin-agent-become-ab12")
    assert argv[:8] == [
        "sudo",
        "-k",
        "-S",
        "-p",
        "[origin-agent-become-ab12-prompt]",
        "-u",
        "www-data",
        "--",
    ]
    line = join([*argv, "id"])
    assert "origin-agent-become-ab12-start" in line and line.endswith(" sh id")


def test_connect_gives_local_for_connection_local_and_implicit_localhost() -> None:
    assert isinstance(
        connect(ConnectionSpec(name="x", address="x", connection="local")), LocalConnection
    )
    assert isinstance(
        connect(ConnectionSpec(name="localhost", address="localhost")), LocalConnection
    )
    with pytest.raises(ConnectError, match="unknown connection type 'winrm'"):
        connect(ConnectionSpec(name="x", address="x", connection="winrm"))


def test_sessions_prefer_aes_gcm_and_keep_the_other_ciphers_as_fallbacks() -> None:
    a, b = socket.socketpair()
    with a, b:
        transport = ssh_connect._new_transport(
            a, gss_kex=False, gss_deleg_creds=False, disabled_algorithms=None
        )
        ciphers = transport.get_security_options().ciphers
    assert ciphers[:2] == ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
    assert set(ciphers) == set(paramiko.Transport._preferred_ciphers)  # type: ignore[attr-defined]


def test_a_private_key_file_is_parsed_once_per_version(tmp_path: Path) -> None:
    path = _keyfile(tmp_path)
    first = ssh_connect.load_keys("h1", (str(path),))[0]
    assert ssh_connect.load_keys("h2", (str(path),))[0] is first  # the same object: not parsed
    path.unlink()
    path.with_suffix(".pub").unlink()
    replaced = _keyfile(tmp_path)  # a new key at the same path: read again
    again = ssh_connect.load_keys("h3", (str(replaced),))[0]
    assert again is not first and again.asbytes() != first.asbytes()
