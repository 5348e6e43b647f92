"""The local state store: SQLite in the state directory.

Holds the certificates issued (and their revocation), ACME accounts, and run records. The
directory is 0700 and the database file 0600 from its creation; SQLite gives its journal the
database's mode. Private keys of certificates are stored only when the store is opened with
``store_keys=True``. One connection guarded by a lock serves any number of worker threads.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from agent.errors import StateError
from agent.secret import Secret
from agent.state.paths import DB_NAME, default_state_dir, ensure_state_dir
from agent.state.records import AcmeAccount, IssuedCertificate, RenewalInfo, RunRecord

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS certificates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL, name TEXT NOT NULL, serial TEXT NOT NULL, fingerprint TEXT NOT NULL,
    pin TEXT NOT NULL, not_after TEXT NOT NULL, backend TEXT NOT NULL,
    backend_id TEXT NOT NULL DEFAULT '', names TEXT NOT NULL DEFAULT '[]',
    cert_pem TEXT NOT NULL DEFAULT '', key_pem TEXT,
    issued_at TEXT NOT NULL, revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS certificates_host_name ON certificates (host, name);
CREATE INDEX IF NOT EXISTS certificates_serial ON certificates (serial);
CREATE TABLE IF NOT EXISTS acme_accounts (
    directory_url TEXT PRIMARY KEY, account_key TEXT NOT NULL, account_url TEXT NOT NULL,
    email TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS renewal_info (
    cert_id TEXT PRIMARY KEY, directory_url TEXT NOT NULL, checked_at TEXT NOT NULL,
    ask_after TEXT NOT NULL, window_start TEXT, window_end TEXT, renew_at TEXT,
    explanation_url TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, plan TEXT NOT NULL, started_at TEXT NOT NULL,
    ended_at TEXT, status TEXT NOT NULL DEFAULT '', counts TEXT NOT NULL DEFAULT '{}'
);
"""
_CERT_COLUMNS = (
    "id, host, name, serial, fingerprint, pin, not_after, backend, backend_id, names, cert_pem,"
    " issued_at, revoked_at"
)


def _ts(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("state store times must be timezone-aware")
    return when.astimezone(UTC).isoformat()


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _cert(row: sqlite3.Row) -> IssuedCertificate:
    return IssuedCertificate(
        id=row["id"],
        host=row["host"],
        name=row["name"],
        serial=row["serial"],
        fingerprint=row["fingerprint"],
        pin=row["pin"],
        not_after=datetime.fromisoformat(row["not_after"]),
        backend=row["backend"],
        backend_id=row["backend_id"],
        names=tuple(json.loads(row["names"])),
        cert_pem=row["cert_pem"],
        issued_at=datetime.fromisoformat(row["issued_at"]),
        revoked_at=_dt(row["revoked_at"]),
    )


class Store:
    """The state database. Use as a context manager or call :meth:`close`."""

    def __init__(
        self, state_dir: str | os.PathLike[str] | None = None, *, store_keys: bool = False
    ) -> None:
        """Open (creating if needed) the store in ``state_dir`` (default: see
        :func:`~agent.state.paths.default_state_dir`).

        Raises:
            StateError: the directory or database is unusable or open to others.
        """
        self.dir = ensure_state_dir(state_dir if state_dir is not None else default_state_dir())
        self.path = self.dir / DB_NAME
        self.store_keys = store_keys
        self._lock = threading.RLock()
        _create_private(self.path)
        try:
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, timeout=30.0, isolation_level=None
            )
        except sqlite3.Error as err:
            raise StateError(f"cannot open state database: {err}", where=str(self.path)) from err
        try:
            self._db.row_factory = sqlite3.Row
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"database schema {version} is newer than this version knows",
                    where=str(self.path),
                )
            self._db.executescript(_SCHEMA)  # idempotent; runs in its own transaction
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException as err:
            self._db.close()
            if isinstance(err, sqlite3.Error):
                raise StateError(f"unusable state database: {err}", where=str(self.path)) from err
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    # -- certificates ------------------------------------------------------------------------

    def record_certificate(self, cert: IssuedCertificate, *, key_pem: Secret | None = None) -> int:
        """Store an issued certificate; return its id. ``key_pem`` is kept only if the store
        was opened with ``store_keys=True``."""
        key_text = key_pem.reveal() if (key_pem is not None and self.store_keys) else None
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO certificates (host, name, serial, fingerprint, pin, not_after,"
                " backend, backend_id, names, cert_pem, key_pem, issued_at, revoked_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    cert.host,
                    cert.name,
                    cert.serial.lower(),
                    cert.fingerprint,
                    cert.pin,
                    _ts(cert.not_after),
                    cert.backend,
                    cert.backend_id,
                    json.dumps(list(cert.names)),
                    cert.cert_pem,
                    key_text,
                    _ts(cert.issued_at),
                    _ts(cert.revoked_at) if cert.revoked_at else None,
                ),
            )
            row_id = cur.lastrowid
        assert row_id is not None
        return row_id

    def certificates(
        self, *, host: str | None = None, name: str | None = None, include_revoked: bool = True
    ) -> list[IssuedCertificate]:
        """Issued certificates, oldest first, optionally for one host and/or name."""
        where, params = [], []
        if host is not None:
            where.append("host = ?")
            params.append(host)
        if name is not None:
            where.append("name = ?")
            params.append(name)
        if not include_revoked:
            where.append("revoked_at IS NULL")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._query(
            f"SELECT {_CERT_COLUMNS} FROM certificates{clause} ORDER BY issued_at, id",
            tuple(params),
        )
        return [_cert(r) for r in rows]

    def latest_certificate(self, host: str, name: str) -> IssuedCertificate | None:
        """The most recently issued, unrevoked certificate for ``host``/``name``."""
        rows = self._query(
            f"SELECT {_CERT_COLUMNS} FROM certificates WHERE host = ? AND name = ?"
            " AND revoked_at IS NULL ORDER BY issued_at DESC, id DESC LIMIT 1",
            (host, name),
        )
        return _cert(rows[0]) if rows else None

    def certificate_key(self, cert_id: int) -> Secret | None:
        """The stored private key of a certificate, if one was stored."""
        rows = self._query("SELECT key_pem FROM certificates WHERE id = ?", (cert_id,))
        return Secret(rows[0]["key_pem"]) if rows and rows[0]["key_pem"] else None

    def mark_revoked(self, serial: str, when: datetime) -> int:
        """Mark every unrevoked certificate with ``serial`` revoked; return how many."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE certificates SET revoked_at = ? WHERE serial = ? AND revoked_at IS NULL",
                (_ts(when), serial.lower()),
            )
            return cur.rowcount

    # -- ACME accounts -----------------------------------------------------------------------

    def save_acme_account(self, account: AcmeAccount) -> None:
        """Store (or replace) the account for ``account.directory_url``."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO acme_accounts"
                " (directory_url, account_key, account_url, email, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    account.directory_url,
                    account.account_key.reveal(),
                    account.account_url,
                    account.email,
                    _ts(account.created_at),
                ),
            )

    def acme_account(self, directory_url: str) -> AcmeAccount | None:
        """The account registered at ``directory_url``, if any."""
        rows = self._query("SELECT * FROM acme_accounts WHERE directory_url = ?", (directory_url,))
        if not rows:
            return None
        row = rows[0]
        return AcmeAccount(
            directory_url=row["directory_url"],
            account_key=Secret(row["account_key"]),
            account_url=row["account_url"],
            email=row["email"],
            created_at=datetime.fromisoformat(row["created_at"]),
        )

    # -- ACME renewal information (RFC 9773) ---------------------------------------------------

    def save_renewal_info(self, info: RenewalInfo) -> None:
        """Keep (or replace) the renewal window of ``info.cert_id``."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO renewal_info (cert_id, directory_url, checked_at,"
                " ask_after, window_start, window_end, renew_at, explanation_url)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    info.cert_id,
                    info.directory_url,
                    _ts(info.checked_at),
                    _ts(info.ask_after),
                    _ts(info.start) if info.start else None,
                    _ts(info.end) if info.end else None,
                    _ts(info.renew_at) if info.renew_at else None,
                    info.explanation_url,
                ),
            )

    def renewal_info(self, cert_id: str) -> RenewalInfo | None:
        """The renewal window kept for ``cert_id`` (RFC 9773 certificate id), if any."""
        rows = self._query("SELECT * FROM renewal_info WHERE cert_id = ?", (cert_id,))
        if not rows:
            return None
        row = rows[0]
        return RenewalInfo(
            cert_id=row["cert_id"],
            directory_url=row["directory_url"],
            checked_at=datetime.fromisoformat(row["checked_at"]),
            ask_after=datetime.fromisoformat(row["ask_after"]),
            start=_dt(row["window_start"]),
            end=_dt(row["window_end"]),
            renew_at=_dt(row["renew_at"]),
            explanation_url=row["explanation_url"],
        )

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, plan: str, started_at: datetime) -> int:
        """Record the start of a run; return its id."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO runs (plan, started_at) VALUES (?, ?)", (plan, _ts(started_at))
            )
            row_id = cur.lastrowid
        assert row_id is not None
        return row_id

    def finish_run(
        self, run_id: int, ended_at: datetime, *, status: str, counts: Mapping[str, int]
    ) -> None:
        """Record how run ``run_id`` ended."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET ended_at = ?, status = ?, counts = ? WHERE id = ?",
                (_ts(ended_at), status, json.dumps(dict(counts), sort_keys=True), run_id),
            )

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The latest ``limit`` runs, newest first."""
        rows = self._query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        return [
            RunRecord(
                id=r["id"],
                plan=r["plan"],
                started_at=datetime.fromisoformat(r["started_at"]),
                ended_at=_dt(r["ended_at"]),
                status=r["status"],
                counts=json.loads(r["counts"]),
            )
            for r in rows
        ]


def _create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if missing; refuse it if open to others."""
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
        os.close(fd)
    except FileExistsError:
        pass
    except OSError as err:
        raise StateError(f"cannot create state database: {err.strerror}", where=str(path)) from err
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise StateError(
            f"state database is open to others (mode {mode:04o})",
            where=str(path),
            hint=f"chmod 600 {path}",
        )
