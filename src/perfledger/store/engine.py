"""Engines for the ledger's databases, configured the way perfledger relies on.

SQLite: WAL journal (readers never block the writer), ``synchronous=NORMAL`` (a committed
transaction survives a killed process; only power loss can cost the last ones), a long busy
timeout, and ``BEGIN IMMEDIATE`` for writes so two writers queue instead of deadlocking on a
lock upgrade. PostgreSQL: psycopg 3 with pre-ping, so a restarted server is noticed.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

_BUSY_TIMEOUT_S = 120
#: SQLite's page cache per connection, in KiB (its default is 2 MiB): the engine's
#: connections and the columnar readers' alike.
CACHE_KIB = 65536


def make_engine(url: sa.URL) -> sa.Engine:
    """Create the engine with the pragmas and transaction mode perfledger relies on."""
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            url,
            connect_args={"timeout": _BUSY_TIMEOUT_S, "check_same_thread": False},
            pool_size=8,
            max_overflow=16,
        )

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event below decide how transactions start.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_S * 1000}")
            cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            write = conn.get_execution_options().get("pl_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    if url.get_backend_name() == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    return sa.create_engine(url)
