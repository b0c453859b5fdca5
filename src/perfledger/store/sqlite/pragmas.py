"""How every ``sqlite3`` connection perfledger writes through is set up, in one place.

The engine's connections (:mod:`.engine`, through SQLAlchemy) and the single-record path's
(:mod:`.direct`, stdlib only) must agree: WAL journal (readers never block the writer),
``synchronous=NORMAL`` (a committed transaction survives a killed process; only power loss
can cost the last ones: those since the last checkpoint), checkpoints every
:data:`WAL_CHECKPOINT_PAGES` pages, a long busy timeout. No SQLAlchemy here.
"""

from __future__ import annotations

import sqlite3
import time

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


def configure(conn: sqlite3.Connection, *, read_only: bool = False) -> None:
    """Set a new connection's pragmas (a read-only one: no WAL pragma, which is a write;
    ``query_only`` on). Transactions are begun explicitly (``isolation_level`` None)."""
    conn.isolation_level = None
    cur = conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    if not read_only:
        _switch_to_wal(cur)
        cur.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    else:
        cur.execute("PRAGMA query_only=1")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cur.close()


def _switch_to_wal(cur: sqlite3.Cursor) -> None:
    """``journal_mode=WAL``, waiting as a busy write would. Switching a new file needs it to
    itself, and SQLite answers "locked" at once, without its busy handler, while another
    connection (another thread's first write, another process) is setting the same file up;
    eight threads taking a new ledger's first logs at once met it. Retried until the busy
    timeout, on SQLite's BUSY/LOCKED codes only."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in (5, 6) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
