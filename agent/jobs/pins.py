"""``origin-agent pins``: the current and the next SPKI pin of every origin.

The current pin comes from a live TLS handshake (as ``status`` does, no SSH). The next pin is
the public half of the pre-made next key, ``CERT_ROOT/NAME/next/pubkey.pem`` on the origin,
read over SSH. ``--make-next`` creates that key on the controller for hosts that have none and
writes it (``privkey.pem`` 0600, then ``pubkey.pem``), so an edge can pin current + next before
a rotation; ``tls_origin`` then issues the next certificate for exactly that key.

NAME is the site name ``tls_origin`` uses by default: the first of the host's ``tls_names``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace

from agent.errors import AgentError, ConnectError
from agent.inventory import Host, connection_spec
from agent.jobs.hostvars import rendered
from agent.jobs.order import natural_key
from agent.jobs.targets import probe_target, tls_names
from agent.jobs.vantage import UNREACHED, origin_address, served_from_origin
from agent.modules.tls import txn
from agent.modules.tls.issue import next_key_files
from agent.pki.inspect import inspect_certificate
from agent.pki.keys import DEFAULT_KEY_TYPE, PrivateKey, check_key_type
from agent.pki.pins import spki_pin
from agent.pki.probe import Served, probe
from agent.transport import Connection, connect
from agent.validate import terminal_safe

COLUMNS = ("host", "name", "address", "current pin", "next pin", "note")


@dataclass(frozen=True)
class PinRow:
    """One host and certificate (site) name. Empty pins mean "none"; errors say why."""

    host: str
    name: str
    address: str
    port: int
    key_type: str = DEFAULT_KEY_TYPE
    current_pin: str = ""
    current_error: str = ""
    next_pin: str = ""
    next_error: str = ""
    next_made: bool = False  # the next key was created by this run (--make-next)
    unreachable: bool = False  # SSH failed: the next pin is unknown
    vantage: str = "controller"  # where the current pin was seen: "controller" or "origin"

    @property
    def pins(self) -> tuple[str, ...]:
        """The pins an edge should accept now: current, then next (each once)."""
        return tuple(dict.fromkeys(p for p in (self.current_pin, self.next_pin) if p))

    @property
    def directive(self) -> str:
        """The pins in ``pin-sha256="..."`` form (HPKP / edge pinning syntax)."""
        return "; ".join(f'pin-sha256="{p}"' for p in self.pins)

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = asdict(self)
        data["pins"] = list(self.pins)
        data["pin_directive"] = self.directive
        return data


def site_name(host: Host) -> str:
    """The certificate (site) name of ``host``: the first of its ``tls_names``.

    Raises:
        ValidationError: that name cannot be a directory name.
    """
    return txn.check_name(tls_names(host)[0], where=f"{host.name}: tls_names")


def host_key_type(host: Host) -> str:
    """The host's ``key_type`` var (default ec256).

    Raises:
        ValidationError: not a supported key type.
    """
    value = host.vars.get("key_type") or DEFAULT_KEY_TYPE
    return check_key_type(value, where=f"{host.name}: key_type")


def next_dir(name: str, cert_root: str = txn.CERT_ROOT) -> str:
    return f"{cert_root}/{txn.check_name(name)}/next"


def served_pin(address: str, port: int, sni: str, *, timeout: float) -> tuple[str, str]:
    """``(pin, "")`` of the certificate served for ``sni``, or ``("", why not)``."""
    return pin_of(probe(address, port, sni, timeout=timeout))


def pin_of(served: Served) -> tuple[str, str]:
    """``(pin, "")`` of a served certificate, or ``("", why not)``."""
    if not served.certificates:
        why = f"{served.outcome}: {served.error}" if served.error else served.outcome
        return "", f"no certificate served ({why})"
    return inspect_certificate(served.certificates[0]).pin_sha256, ""


def read_next_pin(conn: Connection, name: str, *, cert_root: str = txn.CERT_ROOT) -> str | None:
    """The pin of ``NAME/next/pubkey.pem`` on the host (``None``: no next key).

    Raises:
        CommandError: the file exists but cannot be read.
        ValidationError: it holds no public key.
    """
    data = conn.read(f"{next_dir(name, cert_root)}/pubkey.pem")
    return None if data is None else spki_pin(data)


def make_next(
    conn: Connection,
    name: str,
    key_type: str,
    *,
    become: bool = False,
    cert_root: str = txn.CERT_ROOT,
) -> str:
    """Create ``NAME/next/`` with a fresh key of ``key_type``; return its pin.

    The private key is written first (0600 from creation, atomically), the public key last:
    ``pubkey.pem`` is what marks a next key as present, so it never exists without its key.

    Raises:
        CommandError: the directory or a file cannot be written.
    """
    key = PrivateKey.generate(key_type)
    private, public = next_key_files(key)
    where = next_dir(name, cert_root)
    conn.run(["mkdir", "-p", "-m", "0700", where], become=become, check=True)
    conn.write(f"{where}/{private.path}", private.data, mode=private.mode)
    conn.write(f"{where}/{public.path}", public.data, mode=public.mode)
    return key.pin


def host_pins(host: Host, *, make: bool = False, timeout: float = 5.0) -> PinRow:
    """The pins of one host. Never raises for what the host does: errors land in the row."""
    try:
        name = site_name(host)
        key_type = host_key_type(host)
    except AgentError as err:
        return PinRow(
            host=host.name,
            name="-",
            address="",
            port=0,
            current_error=str(err),
            next_error=str(err),
        )
    try:
        target = probe_target(host)
        spec = connection_spec(host)
    except AgentError as err:
        return PinRow(
            host=host.name,
            name=name,
            address="",
            port=0,
            current_error=str(err),
            next_error=str(err),
        )
    address, port = target.address, target.https_port
    served = probe(address, port, name, timeout=timeout)
    current, current_error = pin_of(served)
    row = PinRow(
        host=host.name,
        name=name,
        address=address,
        port=port,
        key_type=key_type,
        current_pin=current,
        current_error=current_error,
    )
    try:
        conn = connect(spec)
    except AgentError as err:
        return _with(row, next_error=_why(err, host), unreachable=isinstance(err, ConnectError))
    try:
        if served.outcome in UNREACHED:  # firewalled to the CDN: the origin looks itself
            seen = served_from_origin(conn, origin_address(host), port, [name], become=spec.become)
            if name in seen:
                current, current_error = pin_of(seen[name])
                row = _with(row, current_pin=current, current_error=current_error, vantage="origin")
        pin = read_next_pin(conn, name)
        if pin is None and make:
            return _with(
                row, next_pin=make_next(conn, name, key_type, become=spec.become), next_made=True
            )
        return _with(row, next_pin=pin or "")
    except AgentError as err:
        return _with(row, next_error=_why(err, host), unreachable=isinstance(err, ConnectError))
    finally:
        conn.close()


def _why(err: AgentError, host: Host) -> str:
    """The error's line without a leading host name (the row and the CLI line name it)."""
    text = str(err)
    return text.removeprefix(f"{host.name}: ")


def _with(row: PinRow, **changes: object) -> PinRow:
    return replace(row, **changes)  # type: ignore[arg-type]


def collect(
    hosts: Sequence[Host], *, make: bool = False, forks: int = 20, timeout: float = 5.0
) -> list[PinRow]:
    """Rows for every host (in parallel), sorted by host and name. Host variables are
    rendered as a plan renders them.

    Raises:
        PlanError: a host variable's template fails.
    """
    hosts = [rendered(h) for h in hosts]
    with ThreadPoolExecutor(max_workers=max(1, min(forks, len(hosts) or 1))) as pool:
        rows = list(pool.map(lambda h: host_pins(h, make=make, timeout=timeout), hosts))
    return sorted(rows, key=lambda r: (natural_key(r.host), natural_key(r.name)))


# -- rendering (pure) ---------------------------------------------------------------------


def _note(row: PinRow) -> str:
    notes = []
    if row.vantage == "origin":
        notes.append("current pin seen from the origin over SSH")
    if row.next_made:
        notes.append("next key made now")
    if row.current_error:
        notes.append(row.current_error)
    if row.next_error:
        notes.append(f"next: {row.next_error}")
    elif not row.next_pin:
        notes.append("no next key (--make-next)")
    return "; ".join(notes)


def table(rows: Sequence[PinRow]) -> str:
    """Plain text: one line per row, then the ``pin-sha256`` form per host for edge configs."""
    data = [list(COLUMNS)] + [
        [
            terminal_safe(cell)
            for cell in (
                r.host,
                r.name,
                f"{r.address}:{r.port}" if r.address else "-",
                r.current_pin or "-",
                r.next_pin or "-",
                _note(r),
            )
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in data) for i in range(len(COLUMNS) - 1)]
    out = [
        ("  ".join(c.ljust(widths[i]) for i, c in enumerate(line[:-1])) + "  " + line[-1]).rstrip()
        for line in data
    ]
    pinned = [r for r in rows if r.pins]
    if pinned:
        out.append("")
        width = max(len(r.host) for r in pinned)
        out += [f"{r.host.ljust(width)}  {r.directive}" for r in pinned]
    return "\n".join(out) + "\n"


def to_json(rows: Sequence[PinRow]) -> str:
    return json.dumps({"rows": [r.to_json() for r in rows]}, indent=1) + "\n"


def exit_code(rows: Sequence[PinRow]) -> int:
    """0 every next pin read (or made), 3 some host unreachable, 1 other failures."""
    if any(r.unreachable for r in rows):
        return 3
    return 1 if any(r.next_error for r in rows) else 0
