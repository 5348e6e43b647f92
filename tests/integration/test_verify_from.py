"""Checks from where the edge stands: an origin the controller reaches only on :22 (its HTTPS
port firewalled to the CDN's ranges, say) is verified from the origin itself, inside the
transaction, and a bad deployment seen from there is still rolled back."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.cli import main
from agent.lab import Lab, LabHost
from tests.integration.test_tls_origin import run, served, task_results

pytestmark = pytest.mark.integration


class SshOnlyAddress:
    """``address:22`` forwarded to ``target:22`` (threads, bounded by the test): the address a
    controller would use for an origin whose every other port is closed to it."""

    def __init__(self, address: str, target: str) -> None:
        self.target = target
        self.listener = socket.create_server((address, 22))
        self.listener.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection((self.target, 22), timeout=10)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORIGIN_AGENT_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def ssh_only(make_lab: Callable[..., Lab], tmp_path: Path) -> Iterator[tuple[Lab, str]]:
    """A one-host nginx lab and an inventory that reaches it at 127.0.3.K (only :22 there)."""
    lab = make_lab(1)
    host: LabHost = lab.hosts[0]
    address = host.address.replace("127.0.1.", "127.0.3.")
    forward = SshOnlyAddress(address, host.address)
    data: dict[str, Any] = yaml.safe_load(Path(lab.inventory_path).read_text())
    data["all"]["children"]["nginx"]["hosts"][host.name]["ansible_host"] = address
    known = Path(lab.known_hosts).read_text().splitlines()
    extra = [line.replace(f"{host.address},", f"{address},", 1) for line in known]
    known_file = tmp_path / "known_hosts"
    known_file.write_text("\n".join(known + extra) + "\n")
    data["all"]["vars"]["known_hosts"] = str(known_file)
    data["all"]["vars"]["ansible_ssh_common_args"] = (
        f"-o UserKnownHostsFile={known_file} -o StrictHostKeyChecking=yes"
    )
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump(data))
    try:
        yield lab, str(inventory)
    finally:
        forward.close()


def test_an_origin_reachable_only_over_ssh_is_verified_from_itself(
    ssh_only: tuple[Lab, str], capsys: pytest.CaptureFixture[str]
) -> None:
    lab, inventory = ssh_only
    host = lab.hosts[0]
    unreachable = host.address.replace("127.0.1.", "127.0.3.")
    with pytest.raises(OSError), socket.create_connection((unreachable, 443), timeout=2):
        pass
    code, events, err = run(capsys, "bootstrap", "-i", inventory)
    assert code == 0, err
    result = task_results(events)[host.name]
    assert result["status"] == "changed"
    assert result["msg"].endswith("ready for strict, verified from the origin"), result["msg"]
    assert served(host) is not None
    code, events, err = run(capsys, "bootstrap", "-i", inventory)
    assert code == 0 and task_results(events)[host.name]["status"] == "ok", err
    capsys.readouterr()
    assert main(["status", "-i", inventory, "--json", "--require-mode", "strict"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["mode"] == "strict" and row["vantage"] == "origin"
    assert row["fingerprint"] and row["address"] == unreachable
    assert main(["pins", "-i", inventory, "--json"]) == 0
    (pin,) = json.loads(capsys.readouterr().out)["rows"]
    assert pin["current_pin"] == row["pin"] and pin["vantage"] == "origin"


def test_a_deployment_the_origin_sees_below_strict_is_rolled_back(
    ssh_only: tuple[Lab, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lab, inventory = ssh_only
    host = lab.hosts[0]
    code, _, err = run(capsys, "bootstrap", "-i", inventory)
    assert code == 0, err
    before = served(host)
    plan = tmp_path / "plan.yml"
    plan.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "tls",
                    "hosts": "all",
                    "tasks": [
                        {
                            "name": "tls step",
                            "tls_origin": {
                                "force": True,
                                "verify_from": "origin",
                                "issuer": {"backend": "selfsigned"},  # no edge trusts it
                                "require_mode": "strict",
                            },
                        }
                    ],
                }
            ]
        )
    )
    code, events, err = run(capsys, "run", str(plan), "-i", inventory)
    assert code == 1
    failed = [e for e in events if e.get("event") == "task_done" and e.get("status") == "failed"]
    text = json.dumps(failed)
    assert "is ready for full, not strict" in text, text
    assert "previous certificate restored" in text
    assert served(host) == before
