"""A real PostgreSQL deadlock aborts a write; the Ledger runs the whole write again (issue 11, item 5).

Two real connections lock the same two ``pl_best`` rows in opposite order: the Ledger's write
(its upserts lock ticker A's row, then wait for B's) and another session (holding B's, then
asking for A's). PostgreSQL aborts one of them with SQLSTATE 40P01; the one that started to
wait first checks first, so it is the Ledger's. The retry must run (its log record is
counted), and afterwards every record is stored exactly once and ``best()`` is exact.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
import pytest
import sqlalchemy as sa

from perfledger import Ledger

pytestmark = pytest.mark.postgres


def _waiting_on_a_lock(conn: psycopg.Connection, pid: int) -> bool:
    row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row is not None and row[0] == "Lock"


def test_a_real_deadlock_is_retried_and_nothing_is_lost_or_doubled(
    pg_ledger: Ledger, pg_server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    pg_ledger.log("M0", "A", sharpe=1.0, notes="seed-A")
    pg_ledger.log("M0", "B", sharpe=1.0, notes="seed-B")
    dsn = sa.make_url(pg_server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    other = psycopg.connect(dsn)
    watcher = psycopg.connect(dsn, autocommit=True)
    other.execute("SELECT 1 FROM pl_best WHERE ticker = 'B' AND metric = 'sharpe' FOR UPDATE")
    before = {other.info.backend_pid, watcher.info.backend_pid}

    caplog.set_level(logging.DEBUG, logger="perfledger")
    errors: list[BaseException] = []
    batch = [{"model_name": "M1", "ticker": t, "sharpe": 2.0 + i, "notes": f"new-{t}-{i}"}
             for t in ("A", "B") for i in range(3)]

    def write() -> None:
        try:
            pg_ledger.log_many(batch)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        _deadlock(other, watcher, before)
    finally:
        other.rollback()
        other.close()
        watcher.close()
        writer.join(timeout=60)

    assert not errors, errors
    retries = [r for r in caplog.records if "write conflict" in r.getMessage()]
    assert retries and "deadlock" in retries[0].getMessage()
    hist = pg_ledger.history(include_meta=True)
    assert sorted(hist["notes"]) == sorted(["seed-A", "seed-B", *(r["notes"] for r in batch)])
    best = pg_ledger.best()
    assert best["A"]["best_sharpe"]["value"] == 4.0 and best["B"]["best_sharpe"]["value"] == 4.0
    assert pg_ledger.stats()["records"] == 8


def _deadlock(other: psycopg.Connection, watcher: psycopg.Connection, before: set[int]) -> None:
    """Wait for the Ledger's session to wait for B's row, then ask for A's row."""
    # The Ledger's session: now waiting for B's row, with A's row locked.
    deadline = time.monotonic() + 30
    ledger_pid = None
    while ledger_pid is None and time.monotonic() < deadline:
        for (pid,) in watcher.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND wait_event_type = 'Lock'"):
            if pid not in before:
                ledger_pid = pid
        time.sleep(0.02)
    assert ledger_pid is not None, "the Ledger's write never waited for the locked row"
    # Ask for A's row: a cycle. The Ledger waited first, so its deadlock check aborts it.
    other.execute("SELECT 1 FROM pl_best WHERE ticker = 'A' AND metric = 'sharpe' FOR UPDATE")
    other.commit()

