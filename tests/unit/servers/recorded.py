"""Output recorded from the real nginx and apache2 binaries (``tests/servers_trees.py``)."""

from __future__ import annotations

from agent.servers.apache_config import parse_apache
from agent.servers.configmap import ConfigMap
from agent.servers.nginx_config import parse_dump
from tests.servers_trees import RECORDED


def text(case: str, name: str) -> str:
    return (RECORDED / case / name).read_text()


def nginx(case: str) -> ConfigMap:
    return parse_dump(text(case, "nginx-T.txt"))


def apache(case: str = "apache-debian", *, main: bool = True) -> ConfigMap:
    prefix = "httpd" if case == "apache-rhel" else "apache2ctl"
    return parse_apache(
        text(case, f"{prefix}-S.txt"),
        text(case, f"{prefix}-DUMP_INCLUDES.txt"),
        text(case, "main-config.txt") if main else None,
    )
