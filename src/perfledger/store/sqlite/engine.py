"""The SQLite engine, configured the way perfledger relies on.

WAL journal (readers never block the writer), ``synchronous=NORMAL`` (a committed
transaction survives a killed process; only power loss can cost the last ones: those since
the last checkpoint), checkpoints every :data:`WAL_CHECKPOINT_PAGES` pages, a long busy
timeout, and ``BEGIN IMMEDIATE`` for writes so two writers queue instead of deadlocking on a
lock upgrade.

A SQLite ledger this process may only read gets an engine without a pool whose every
connection is opened read-only by :class:`~.readonly.ReadOnlyFile` (no WAL pragma: that is a
write; ``query_only`` on). SQLite gives the ``-wal`` and ``-shm`` files the database's mode
(which :mod:`.database_file` creates as ``open()`` would).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from . import locks
from .readonly import ReadOnlyFile

BUSY_TIMEOUT_S = 120
#: SQLite's page cache per connection, in KiB (its default is 2 MiB): the engine's
#: connections and the columnar readers' alike.
CACHE_KIB = 65536
#: WAL pages between automatic checkpoints (SQLite's default is 1,000, i.e. 4 MiB). A
#: ``log()`` dirties about eight pages, most of them the same ones (the derived tables, the
#: right edge of the records): a checkpoint every ~500 logs instead of every ~125 writes each
#: hot page back once instead of four times and fsyncs a quarter as often: 20-30% more
#: sustained single logs at 1M records in two alternated ad-hoc runs on a loaded machine (not
#: a bench/ figure; read it as a direction). The cost: a WAL of up to 16 MiB, and on
#: power loss (never on a killed process) up to that much of the latest commits.
WAL_CHECKPOINT_PAGES = 4000


def make_engine(url: sa.URL, read_only: ReadOnlyFile | None = None) -> sa.Engine:
    """Create the engine with the pragmas and transaction mode perfledger relies on; with
    ``read_only``, every connection opens that file read-only (see :mod:`.readonly`)."""
    if read_only is not None:
        engine = sa.create_engine(url, creator=read_only.connect, poolclass=sa.pool.NullPool)
    else:
        engine = sa.create_engine(
            url,
            connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False,
                          "factory": locks.EngineConnection},
            pool_size=8,
            max_overflow=16,
        )

    held = locks.key(url.database or "")

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        if read_only is None:
            locks.engine_opened(held, dbapi_conn)
        # Let SQLAlchemy's "begin" event below decide how transactions start.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if read_only is None:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        else:
            cur.execute("PRAGMA query_only=1")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        cur.close()

    if read_only is None:
        @sa.event.listens_for(engine, "close")
        def _on_close(dbapi_conn: Any, _record: Any) -> None:
            locks.engine_closing(dbapi_conn)

        @sa.event.listens_for(engine, "close_detached")
        def _on_close_detached(dbapi_conn: Any) -> None:
            locks.engine_closing(dbapi_conn)

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.connection.dbapi_connection.in_transaction:
            return  # inside immediate_transaction(): that BEGIN already holds the lock
        write = conn.get_execution_options().get("pl_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
