"""The lab's per-host files, as pure text."""

from __future__ import annotations

from agent.lab import files
from agent.lab.rootfs import without_packages

STATUS = """Package: nginx
Status: install ok installed

Package: nginx-common
Status: install ok installed

Package: libnginx-mod-stream
Status: install ok installed

Package: nginx-light-ish
Status: install ok installed

Package: apache2
Status: install ok installed"""


def test_sshd_config_allows_root_by_key_only_on_the_hosts_address() -> None:
    text = files.sshd_config("127.0.1.7")
    assert "ListenAddress 127.0.1.7:22" in text
    assert "PermitRootLogin prohibit-password" in text
    assert "PasswordAuthentication no" in text
    assert "HostKey /etc/ssh/ssh_host_ed25519_key" in text


def test_web_servers_bind_the_hosts_address_not_every_address() -> None:
    assert "listen 127.0.1.3:80 default_server;" in files.nginx_default_site("127.0.1.3", "origin3")
    ports = files.apache_ports_conf("127.0.1.4")
    assert "Listen 127.0.1.4:80" in ports and "Listen 127.0.1.4:443" in ports
    assert "Listen 80" not in ports


def test_hiding_a_server_removes_exactly_its_packages_from_dpkg_status() -> None:
    kept = without_packages(STATUS, ("nginx", "nginx-common", "libnginx-mod-"))
    names = [line.split(": ")[1] for line in kept.splitlines() if line.startswith("Package: ")]
    assert names == ["nginx-light-ish", "apache2"]


def test_host_keys_are_openssh_ed25519() -> None:
    private, public = files.ed25519_keypair()
    assert private.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert public.startswith("ssh-ed25519 ")
    other_private, _ = files.ed25519_keypair()
    assert other_private != private


def test_etc_hosts_names_every_lab_host() -> None:
    text = files.etc_hosts([("origin1", "127.0.1.1"), ("origin2", "127.0.1.2")])
    assert "127.0.1.2\torigin2.lab.test origin2" in text
