"""The embedded store: a SQLite file (WAL), the ledger directory's one source of truth.

Opening checks the file first (another application's database is refused untouched; a file
this process may only read opens read-only, :mod:`.access`), then the schema. Writes go
through ONE connection the store holds between writes, queued on a lock: checking one out of
SQLAlchemy's pool and back (a Connection object, the checkout and reset-on-return
bookkeeping) was 5% of a single ``log()``'s instructions (callgrind), and this process's
writers queue on the lock as they would on SQLite's write lock, without its polling. Reads
use the pool, large ones ADBC (:mod:`.arrow`).

What SQLite's result codes mean for the user is decided here (:meth:`SQLiteStore._cause`),
by code, never by message: a full disk, an I/O error (the file deleted under the process, a
failing disk), a damaged file, a lock held too long, a file this user may not write.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from ...errors import ValidationError
from .. import schema as T
from ..errors import Cause, orig
from ..migrations import EngineSteps, backfill_labels
from ..sql import SQLStore
from ..writes import Statements
from . import queries
from .access import read_only_reason
from .arrow import SQLiteArrow
from .causes import sqlite_cause
from .database_file import backup_copy, create_file, refuse_foreign
from .engine import BUSY_TIMEOUT_S, make_engine
from .identity import file_identity
from .readonly import ReadOnlyFile
from .writer import SQLiteWriteTx

if TYPE_CHECKING:
    from ...records.labels import Grouping
    from ..base import HistoryQuery, LabelRow, TailQuery
    from ..queries import Source

def _v4_record_labels(conn: sa.Connection) -> None:
    """Which record carries which label, filled from every record already stored."""
    T.record_labels.create(conn)
    backfill_labels(conn, SQLiteWriteTx(conn, _statements()))


def _statements() -> Statements:
    return Statements(sqlite.insert, sqlite.dialect(paramstyle="named"), sqlite.dialect(paramstyle="qmark"))


class SQLiteStore(SQLStore):
    """A ledger in one SQLite database file."""

    TABLES = (*T.COMMON_TABLES, T.record_labels)

    def __init__(self, url: sa.URL, *, ledger: str | None = None, guarded: Iterable[Path] = (),
                 read_only: bool = False, repair: bool = False, make_directory: bool = False):
        """``ledger``: the ledger as the user knows it (its directory), for the messages
        about what this user may do; ``guarded``: files beside the database that writes also
        change (the mirrors); when this process may not write one of them (or with
        ``read_only``), the store opens read-only. ``make_directory``: the database's
        directory (a ledger directory) may not exist yet; the first write creates it.

        A database file that does not exist is not created here: reads answer as an empty
        ledger and leave nothing on disk; the first write creates the file (and with
        ``make_directory`` its directory)."""
        path = Path(url.database or "")
        self.path = path
        self._make_directory = make_directory
        where = f"SQLite database {str(path)!r}"
        if not make_directory and not path.parent.is_dir():
            raise ValidationError(
                f"store {where}: the directory {str(path.parent)!r} does not exist (a URL names an "
                "existing directory; a ledger directory is created when given as a path)",
                [(None, "store", "no such directory")],
            )
        refuse_foreign(path, where)
        named = ledger or where
        self.read_only_reason = read_only_reason(named, path, guarded) or (
            f"{named} was opened read-only; nothing was changed" if read_only else None)
        self.read_only_file = (ReadOnlyFile(str(path), BUSY_TIMEOUT_S)
                               if self.read_only_reason is not None else None)
        self.STEPS = EngineSteps(steps={4: _v4_record_labels},
                                 backup=lambda version: backup_copy(path, version))
        self._statements = _statements()
        #: The one connection this store writes through (see the module doc), and the lock
        #: that queues this process's writers for it.
        self._write_conn: sa.Connection | None = None
        self._write_lock = threading.Lock()
        engine = make_engine(url, self.read_only_file)
        try:
            super().__init__(url, engine, SQLiteArrow(str(path), self.read_only_file), repair=repair)
        except BaseException:
            engine.dispose()
            raise

    # ------------------------------------------------------------------ hooks

    def _exists(self) -> bool:
        return self.path.exists()

    def _make(self) -> None:
        if self._make_directory:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        create_file(self.path)

    def _cause(self, exc: BaseException) -> Cause | None:
        """By SQLite's primary result code (:mod:`.causes`)."""
        return sqlite_cause(exc, self._schema_altered, self.path)

    def _schema_altered(self) -> bool:
        """Whether a table or column this release's schema has is missing from the file."""
        try:
            with sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True) as con:
                for table in self.TABLES:
                    have = {r[1] for r in con.execute(f'PRAGMA table_info("{table.name}")')}
                    if not have >= {c.name for c in table.c}:
                        return True
        except sqlite3.Error:
            return False  # the file itself fails: its own error says so
        return False

    def _retryable(self, exc: BaseException) -> bool:
        """A reader that may only read the file opens its write-ahead log read-only while the
        owner has one; an owner closing its last connection at that moment removes it, and the
        read fails to open or read it (``SQLITE_CANTOPEN``/``SQLITE_IOERR``). Read again: by
        then the file is checkpointed (read ``immutable``) or the owner has a log again."""
        error = orig(exc)
        code = getattr(error, "sqlite_errorcode", None) if isinstance(error, sqlite3.Error) else None
        return self.read_only_file is not None and isinstance(code, int) and code & 0xFF in (10, 14)

    @contextmanager
    def _transaction(self, single: bool = False) -> Iterator[SQLiteWriteTx]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` on the driver's connection itself; the
        transaction's abort hooks run before the rollback (a failed ``COMMIT`` included:
        SQLite keeps the transaction, and its lock, until it is rolled back), its commit
        hooks after the commit.

        Why not ``conn.begin()``: SQLAlchemy's transaction bookkeeping (events, the begin and
        commit wrappers) costs about 80 µs per transaction, as much as all the statements of
        a single ``log()``, which talks to the driver directly anyway. A statement run
        through SQLAlchemy inside (the rare paths: import keys, label listings, index builds)
        autobegins; the engine's ``begin`` hook sees the driver already in a transaction and
        does nothing, and the one ``COMMIT`` (or ``ROLLBACK``) here ends both."""
        with self._write_lock:
            conn = self._write_conn
            if conn is None or conn.closed:
                conn = self._write_conn = self.engine.connect()
            raw = conn.connection.dbapi_connection
            tx = SQLiteWriteTx(conn, self._statements)
            raw.execute("BEGIN IMMEDIATE")
            try:
                yield tx
                raw.commit()
            except BaseException:
                tx.aborted()
                raw.rollback()
                if conn.in_transaction():
                    conn.rollback()
                raise
            if conn.in_transaction():
                conn.commit()  # ends SQLAlchemy's view of the transaction; the driver has committed
            tx.committed()

    def _snapshot_connection(self, conn: sa.Connection) -> sa.Connection:
        # WAL: a deferred transaction reads one snapshot from its first read to its end,
        # without the write lock.
        return conn

    @contextmanager
    def _checked(self, conn: sa.Connection) -> Iterator[None]:
        """On a read-only file opened immutable: raise ChangedDuringRead (the read is run
        again) when the file changed during the transaction, also when the read failed."""
        if self.read_only_file is None:
            yield
            return
        raw = conn.connection.dbapi_connection
        try:
            yield
        except Exception:
            self.read_only_file.check_connection(raw)
            raise
        self.read_only_file.check_connection(raw)

    def _label_source(self, conn: sa.Connection, query: HistoryQuery, params: dict[str, Any]
                      ) -> tuple[str, list[str]] | None:
        return queries.label_clauses(conn, query, params)

    def _grouped_stats(self, conn: sa.Connection, src: Source, by: Grouping, ticker: str | None
                       ) -> tuple[list[Any], list[Any]]:
        return queries.grouped_stats(conn, src, by, ticker=ticker, read=self._table,
                                     has_extras=self._has_extras(conn))

    def _label_rows(self, conn: sa.Connection, ticker: str | None) -> list[LabelRow]:
        return queries.label_rows(conn, ticker)

    def _tails_sql(self, query: TailQuery, where: str, inner: str, params: dict[str, Any]) -> str:
        return queries.tails_sql(query, where, inner, params)

    # ------------------------------------------------------------------ lifecycle

    def identity(self) -> tuple[Any, ...]:
        return file_identity(self.path)

    def dispose(self) -> None:
        with self._write_lock:
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None
        super().dispose()

    def after_fork(self) -> None:
        # The parent's write connection (and lock, which another thread may have held at the
        # fork) are forgotten, never closed here: see :mod:`.locks`.
        self._write_conn, self._write_lock = None, threading.Lock()
        super().after_fork()
