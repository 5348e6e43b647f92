"""The origin transaction as one value: what :mod:`agent.modules.tls.txn` turns into the remote
script and its payload, and what check and diff mode list (:meth:`Transaction.changes`), so the
two can never tell different stories.

Layout on the origin::

    /etc/ssl/origin-agent/NAME/VERSION/{privkey,cert,chain,fullchain}.pem   (key 0600)
    /etc/ssl/origin-agent/NAME/current -> VERSION
    /etc/ssl/origin-agent/NAME/next/{privkey,pubkey}.pem   pre-made next key (optional)
    /var/lib/origin-agent/txn/NAME/last/{journal,b1,b2...}   undo journal of the last change
                                                             (backups named relative to it)

A transaction that renews the certificate is first decided with the certificate *pending*
(``renew`` set, ``version`` None: the CA has not been asked yet); :meth:`with_certificate`
fills in the issued version. Only a transaction with nothing pending can be applied.
"""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from agent.errors import ValidationError
from agent.transport.changes import (
    Change,
    MakeDir,
    RemovePath,
    RunCommand,
    SwapSymlink,
    WriteFile,
)
from agent.validate import check_hostname, check_path

CERT_ROOT = "/etc/ssl/origin-agent"
TXN_ROOT = "/var/lib/origin-agent/txn"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_VERSION = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{4,16}$")
_TOKEN = re.compile(r"^[0-9a-f]{0,32}$")
VERSION_FILES = {
    "privkey.pem": 0o600,
    "cert.pem": 0o644,
    "chain.pem": 0o644,
    "fullchain.pem": 0o644,
    "meta.json": 0o644,
}
# The pre-made next key (NAME/next/), shipped with a rotation that used the previous one.
NEXT_FILES = {"privkey.pem": 0o600, "pubkey.pem": 0o644}
PENDING_VERSION = "NEW-VERSION"  # how check mode names the version a CA has not issued yet
PAYLOAD_DIR = ".origin-agent-tmp-payload"  # unpacked in NAME/, removed by every transaction


def check_name(value: str, *, where: str = "name") -> str:
    """A site name usable as a file name: letters, digits, ``.``, ``_``, ``-``."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise ValidationError(f"invalid site name {value!r} (letters, digits, . _ -)", where=where)
    return value


@dataclass(frozen=True)
class ServerCommands:
    test: tuple[str, ...]
    reload: tuple[str, ...]
    reload_systemd: tuple[str, ...]
    start: tuple[str, ...]
    start_systemd: tuple[str, ...]


@dataclass(frozen=True)
class OriginProbe:
    """A handshake the transaction script makes from the origin itself once it has reloaded
    (``verify_from: origin``): ``address:port`` with SNI ``name``."""

    address: str
    port: int
    name: str

    def __post_init__(self) -> None:
        check_hostname(self.address.strip("[]").replace(":", "-"), where="probe address")
        check_hostname(self.name.lstrip("*."), where="probe name")
        if not 0 < self.port < 65536:
            raise ValidationError(f"invalid probe port {self.port!r}")


@dataclass(frozen=True)
class Transaction:
    """Everything one origin change consists of.

    ``renew`` says why a new certificate is part of it (None: none is); ``version`` and
    ``version_files`` are that certificate once issued. ``before_files``/``before_links`` are
    what the origin holds now (for diffs only); ``systemd`` says which reload command runs.
    """

    name: str
    server: ServerCommands
    version: str | None = None
    version_files: tuple[WriteFile, ...] = ()  # paths are bare file names (VERSION_FILES)
    files: tuple[WriteFile, ...] = ()
    links: tuple[SwapSymlink, ...] = ()
    commands: tuple[RunCommand, ...] = ()  # enable steps, skipped ``unless`` already done
    reload: bool = True
    consume_next: bool = False
    # Files of a fresh NAME/next/ (bare names, NEXT_FILES): after a successful switch the old
    # next/ is replaced by them (and put back if the change is rolled back); implies consume_next.
    next_files: tuple[WriteFile, ...] = ()
    keep_versions: int = 3
    cert_root: str = CERT_ROOT
    txn_root: str = TXN_ROOT
    renew: str | None = None
    make_next: bool = False  # pending: a fresh next key comes with the new certificate
    previous_version: str | None = field(default=None, compare=False)
    before_files: Mapping[str, bytes | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    before_links: Mapping[str, str | None] = field(default_factory=dict, compare=False, repr=False)
    systemd: bool = False
    token: str = ""  # makes this transaction's temporary names its own (hex)
    lock_wait: int = 60  # seconds to wait for another transaction on the same site
    probes: tuple[OriginProbe, ...] = ()  # handshakes from the origin after the reload
    expect: str = ""  # SHA-256 (hex) of the certificate the probes must see ("": any)
    error_log: str = ""  # the server's error log: its offset before the reload is kept

    def __post_init__(self) -> None:
        check_name(self.name)
        check_path(self.cert_root, where="cert_root")
        check_path(self.txn_root, where="txn_root")
        if self.version is not None and not _VERSION.fullmatch(self.version):
            raise ValidationError(f"invalid certificate version {self.version!r}")
        if self.version is not None and self.renew is None:
            object.__setattr__(self, "renew", "new certificate")
        if not _TOKEN.fullmatch(self.token):
            raise ValidationError(f"invalid transaction token {self.token!r}")
        for vf in self.version_files:
            if vf.path not in VERSION_FILES:
                raise ValidationError(f"unexpected certificate file {vf.path!r}")
        for nf in self.next_files:
            if nf.path not in NEXT_FILES:
                raise ValidationError(f"unexpected next-key file {nf.path!r}")
        for f in self.files:
            check_path(f.path, where="file")
        for link in self.links:
            check_path(link.path, where="link")
            if link.target.startswith("/"):
                check_path(link.target, where="link target")
            elif not _NAME.fullmatch(link.target):
                raise ValidationError(f"invalid link target {link.target!r}")
        if self.expect and not re.fullmatch(r"[0-9a-f]{64}", self.expect):
            raise ValidationError(f"invalid expected fingerprint {self.expect!r}")
        if self.error_log:
            check_path(self.error_log, where="error_log")
        if not 0 <= self.lock_wait <= 3600:
            raise ValidationError("lock_wait must be 0..3600 seconds")
        if not 1 <= self.keep_versions <= 100:
            raise ValidationError("keep_versions must be 1..100")

    @property
    def root(self) -> str:
        return f"{self.cert_root}/{self.name}"

    @property
    def journal(self) -> str:
        return f"{self.txn_root}/{self.name}"

    @property
    def pending(self) -> bool:
        """A new certificate is part of this change but not issued yet."""
        return self.renew is not None and self.version is None

    @property
    def payload_dir(self) -> str:
        return f"{PAYLOAD_DIR}-{self.token}" if self.token else PAYLOAD_DIR

    def with_certificate(
        self,
        version: str,
        version_files: tuple[WriteFile, ...],
        *,
        next_files: tuple[WriteFile, ...] = (),
        consume_next: bool = False,
    ) -> Transaction:
        """This transaction with its pending certificate issued."""
        return replace(
            self,
            version=version,
            version_files=version_files,
            next_files=next_files,
            consume_next=consume_next,
        )

    def changes(self) -> tuple[Change, ...]:
        """What the script does, in its order, as change values (check, diff, JSON output)."""
        out: list[Change] = []
        version = self.version or PENDING_VERSION
        if self.renew is not None:
            out.append(MakeDir(f"{self.root}/{version}", 0o755))
            out += self._version_changes(version)
        out += [replace(f, before=self.before_files.get(f.path)) for f in self.files]
        out += [replace(x, previous=self.before_links.get(x.path)) for x in self.links]
        out += list(self.commands)
        if self.renew is not None:
            out.append(SwapSymlink(f"{self.root}/current", version, previous=self.previous_version))
        out.append(RunCommand(self.server.test, changed=False))
        if self.reload:
            out.append(
                RunCommand(self.server.reload_systemd if self.systemd else self.server.reload)
            )
        if self.next_files or self.make_next:
            out += [
                WriteFile(f"{self.root}/next/{n}", b"", m, secret=n == "privkey.pem")
                for n, m in NEXT_FILES.items()
            ]
        elif self.consume_next:
            out.append(RemovePath(f"{self.root}/next", recursive=True))
        return tuple(out)

    def _version_changes(self, version: str) -> list[Change]:
        if not self.version_files:  # pending: the CA has not answered yet
            note = f"(new certificate: {self.renew})".encode()
            return [
                WriteFile(f"{self.root}/{version}/privkey.pem", b"", 0o600, secret=True),
                WriteFile(f"{self.root}/{version}/fullchain.pem", note, 0o644),
            ]
        return [
            WriteFile(
                f"{self.root}/{version}/{vf.path}",
                vf.data,
                vf.mode,
                secret=vf.path == "privkey.pem",
            )
            for vf in self.version_files
        ]


def payload(txn: Transaction) -> bytes:
    """The tar sent on stdin, all under the transaction's payload directory: ``v/<file>`` (the
    certificate version, a 0755 directory), ``f/<n>`` (files), ``n/<file>`` (the next key) and
    ``current`` (a symlink to the new version)."""
    if txn.pending:
        raise ValidationError(f"{txn.name}: the new certificate is not issued yet")
    top = txn.payload_dir
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        members = [(f"v/{vf.path}", vf.data, vf.mode) for vf in txn.version_files]
        members += [(f"f/{i}", f.data, f.mode) for i, f in enumerate(txn.files)]
        members += [(f"n/{nf.path}", nf.data, NEXT_FILES[nf.path]) for nf in txn.next_files]
        dirs = {"": 0o700, "v": 0o755, "f": 0o700} | ({"n": 0o700} if txn.next_files else {})
        for dirname, mode in dirs.items():
            info = tarfile.TarInfo(f"{top}/{dirname}".rstrip("/"))
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)
        for name, data, mode in members:
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
        if txn.version:  # the new ``current``, renamed over the old one (no ln on the origin)
            info = tarfile.TarInfo(f"{top}/current")
            info.type = tarfile.SYMTYPE
            info.linkname = txn.version
            info.mode = 0o777
            tar.addfile(info)
    return buf.getvalue()
