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
from .pragmas import BUSY_TIMEOUT_S, CACHE_KIB, WAL_CHECKPOINT_PAGES, configure
from .readonly import ReadOnlyFile

__all__ = ["BUSY_TIMEOUT_S", "CACHE_KIB", "WAL_CHECKPOINT_PAGES", "make_engine"]


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
        configure(dbapi_conn, read_only=read_only is not None)

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
