"""The server's own lines since a reload, from error logs of the real servers."""

from __future__ import annotations

from agent.servers.errorlog import server_errors, since_argv, size_argv
from tests.unit.servers.recorded import text


def test_nginx_bind_failure_is_one_line_once_and_request_errors_are_left_out() -> None:
    log = text("errorlogs", "nginx-error.log")
    assert "client: 127.0.0.1" in log and log.count("bind() to") == 5
    assert server_errors(log, "nginx") == [
        "bind() to 127.0.1.5:8443 failed (98: Address already in use)",
        "still could not bind()",
    ]


def test_apache_raw_startup_lines_are_kept_notices_and_request_errors_are_not() -> None:
    log = text("errorlogs", "apache-error.log")
    assert "[client 127.0.0.1" in log and "resuming normal operations" in log
    assert server_errors(log, "apache") == [
        "(98)Address already in use: AH00072: make_sock: could not bind to address 127.0.1.5:8443",
        "no listening sockets available, shutting down",
        "AH00019: Unable to open logs, exiting",
    ]
    assert server_errors(log, "apache", limit=1) == server_errors(log, "apache")[:1]


def test_argvs_read_the_log_from_a_byte_offset() -> None:
    assert size_argv("/var/log/nginx/error.log") == [
        "stat",
        "-c",
        "%s",
        "--",
        "/var/log/nginx/error.log",
    ]
    assert since_argv("/l", 120) == ["tail", "-c", "+121", "--", "/l"]
