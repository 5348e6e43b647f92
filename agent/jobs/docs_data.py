"""What ``origin-agent doc`` says besides the module and issuer specs: the inventory variables
the tool reads, its exit codes and the files it writes on an origin.

Each table is built from the code's own constants where there are some (connection variable
aliases, exit codes, the certificate layout and server paths); the prose next to them is here.
Unit tests hold the variable table to what the code reads (``vars.get("NAME")`` and the plans'
``{{ NAME }}``), so a variable cannot be added without being documented.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields

from agent.commands.promote import EXIT_BLOCKED
from agent.commands.status import EXIT_THRESHOLD
from agent.errors import AgentError, BrokerError, RunLockedError, UsageError
from agent.inventory.connection import ALIASES
from agent.jobs.followup import NOTIFY_VAR
from agent.jobs.promote import ZONE_VARS
from agent.modules.tls import txn
from agent.report.events import EXIT_OK, EXIT_UNREACHABLE
from agent.servers.base import adapter_for
from agent.transport.spec import ConnectionSpec


@dataclass(frozen=True)
class Variable:
    """One inventory (host or group) variable the tool reads."""

    name: str
    type: str
    default: str
    help: str
    aliases: tuple[str, ...] = ()


_CONNECTION_HELP: dict[str, tuple[str, str]] = {
    "host": ("string", "address to connect to (default: the inventory name)"),
    "port": ("int", "SSH port"),
    "user": ("string", "SSH user"),
    "key_file": ("path", "private key file"),
    "known_hosts": (
        "path",
        "known hosts file (default: ~/.ssh/known_hosts); unknown hosts are refused",
    ),
    "password_env": ("string", "name of an environment variable holding the SSH password"),
    "become": ("bool", "run commands with sudo"),
    "become_user": ("string", "the user sudo runs commands as"),
    "become_password_env": ("string", "name of an environment variable holding the sudo password"),
    "connection": ("string", "ssh or local (paramiko and smart mean ssh)"),
    "connect_timeout": ("number", "seconds to wait for the SSH connection"),
}

_TLS_VARIABLES = (
    Variable("tls_names", "list", "the inventory name", "DNS names of the host's certificate"),
    Variable(
        "issuer",
        "mapping",
        "none",
        "the issuer config, e.g. {backend: localca, dir: ./ca} (see `doc ISSUER`)",
    ),
    Variable("listen_address", "string", "none", "address the TLS site binds and is probed at"),
    Variable("https_port", "int", "443", "HTTPS port `status` and `pins` probe"),
    Variable("http_port", "int", "80", "HTTP port `status` probes"),
    Variable("web_server", "string", "auto", "nginx or apache: the server to configure"),
    Variable("upstream", "string", "none", "app URL our own site proxies to"),
    Variable("key_type", "string", "ec256", "key type of new keys (plans, `pins --make-next`)"),
    Variable("tls_pins", "list", "none", "SPKI pins `status` checks the served key against"),
    Variable(
        "renew_before_days",
        "int",
        "the renewal policy",
        "renew this many days before expiry (0: at expiry)",
    ),
    Variable(NOTIFY_VAR, "list", "none", "webhook URLs `rotate` posts problems of this host to"),
    *(
        Variable(v, "string", "none", "Cloudflare zone id of the host, for `promote`")
        for v in ZONE_VARS
    ),
)

_PLAN_VARIABLES = (
    Variable("target", "string", "all", "host pattern the shipped plans run on"),
    Variable("force", "bool", "false", "renew even when not due (`rotate --force`)"),
    Variable("tls_profile", "string", "intermediate", "the TLS profile (intermediate, modern)"),
    Variable("revoke_replaced", "bool", "true", "revoke the replaced certificate (rotate)"),
    Variable("acme_webroot", "path", "/var/www/acme", "where ACME challenges are served from"),
)


_FLEET_VARIABLES = (
    Variable(
        "worker_queue",
        "string",
        "origin-agent",
        "Celery queue whose workers run this host (`--executor celery`; `worker -Q`)",
    ),
)


def connection_variables() -> tuple[Variable, ...]:
    """How to reach a host: our names with the Ansible names accepted the same."""
    defaults = {f.name: f.default for f in fields(ConnectionSpec)}
    rows = []
    for name in ALIASES:
        kind, text = _CONNECTION_HELP[name]
        value = defaults.get(name, MISSING)
        shown = "" if value is MISSING else "none" if value is None else str(value).lower()
        rows.append(Variable(name, kind, shown, text, aliases=ALIASES[name]))
    return tuple(rows)


def variable_groups() -> tuple[tuple[str, tuple[Variable, ...]], ...]:
    """(title, variables) for each group of variables, in the order they are shown."""
    return (
        ("Connection", connection_variables()),
        ("TLS step, status, pins, promote, alerts", _TLS_VARIABLES),
        ("Read by the shipped plans (plans/*.yml)", _PLAN_VARIABLES),
        ("Fleet runs (--executor celery)", _FLEET_VARIABLES),
    )


def exit_codes() -> tuple[tuple[int, str], ...]:
    """(code, meaning) of every exit status of the CLI."""
    return (
        (EXIT_OK, "success"),
        (AgentError.exit_code, "a host failed, or the input (plan, inventory, config) is bad"),
        (UsageError.exit_code, "usage: bad command-line arguments"),
        (EXIT_UNREACHABLE, "some host was unreachable (and none failed)"),
        (
            EXIT_THRESHOLD,
            "a `status` threshold was not met (`--require-mode`, `--fail-within`)",
        ),
        (EXIT_BLOCKED, "`promote` was blocked: an origin of the zone does not verify"),
        (RunLockedError.exit_code, "another run holds the inventory's lock (the holder is named)"),
        (BrokerError.exit_code, "the fleet's broker (Redis) is unreachable or was lost mid-run"),
        (130, "interrupted (Ctrl-C)"),
    )


_VERSION_FILES = {
    "privkey.pem": "the key of one certificate version (VERSION: UTC time and a random suffix)",
    "cert.pem": "its certificate",
    "chain.pem": "the intermediates",
    "fullchain.pem": "certificate and intermediates, as the server loads them",
    "meta.json": "what the controller recorded about the version",
}


def origin_files() -> tuple[tuple[str, str, str], ...]:
    """(path, mode, what) of every file the TLS step writes on an origin, for site NAME."""
    root, work = txn.CERT_ROOT, txn.TXN_ROOT
    rows = [
        (f"{root}/NAME/VERSION/{f}", f"{mode:04o}", _VERSION_FILES.get(f, ""))
        for f, mode in txn.VERSION_FILES.items()
    ]
    rows.append((f"{root}/NAME/current", "link", "-> VERSION: the live key and certificate"))
    rows += [
        (f"{root}/NAME/next/{f}", f"{mode:04o}", "pre-made next key (`pins --make-next`)")
        for f, mode in txn.NEXT_FILES.items()
    ]
    rows += [
        (f"{root}/NAME/client-ca.pem", "0644", "CA for authenticated origin pulls (client_ca)"),
        (f"{root}/NAME/site-files", "0644", "where the site's files were placed (read back)"),
        (f"{root}/NAME/{txn.PAYLOAD_DIR}", "dir", "transaction temporaries, removed by the next"),
        (f"{work}/NAME.lock", "0600", "flock: one transaction at a time per site"),
        (f"{work}/NAME.holder", "0600", "pid and start time of the transaction holding the lock"),
        (f"{work}/NAME/last/journal", "0600", "undo journal of the last transaction"),
        (f"{work}/NAME/last/bN", "0600", "backups the journal names (b1, b2, ...)"),
        (
            f"{work}/NAME/last/token",
            "0600",
            "the last transaction's id: a rollback undoes only its own",
        ),
    ]
    for server in ("nginx", "apache"):
        adapter = adapter_for(server)
        rows.append((adapter.site_path("NAME"), "0644", f"our {server} site (Debian layout)"))
        rows.append((adapter.paths.policy_file, "0644", f"host-wide TLS policy for {server}"))
    return tuple(rows)
