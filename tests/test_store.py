"""Store-level guarantees: schema versions, connection errors, URLs, reopen after fork."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from perfledger import Ledger, SchemaVersionError, StoreConnectionError
from perfledger.store.sqlite.engine import WAL_CHECKPOINT_PAGES


def test_a_newer_schema_is_refused_untouched(ledger_dir: Path) -> None:
    led = Ledger(ledger_dir)
    led.log("M", "T", sharpe=1.0)
    led.close()
    db = ledger_dir / "perfledger.db"
    con = sqlite3.connect(db)
    con.execute("UPDATE pl_meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file, to compare
    con.close()
    before = db.read_bytes()
    with pytest.raises(SchemaVersionError, match="v99"):
        Ledger(ledger_dir)
    assert db.read_bytes() == before


def test_sqlite_store_uses_wal_and_indexes(ledger: Ledger) -> None:
    ledger.clear()  # the first write creates the tables (opening creates nothing)
    con = sqlite3.connect(ledger.directory / "perfledger.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with ledger._ensure().engine.connect() as conn:  # the ledger's own connections
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_CHECKPOINT_PAGES
    plan = " ".join(r[3] for r in con.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM pl_records WHERE ticker = 'A' ORDER BY ts"))
    assert "ix_pl_records_ticker_ts" in plan
    con.close()


def test_connection_failure_names_host_and_database_but_not_the_password() -> None:
    with pytest.raises(StoreConnectionError) as info:
        Ledger("postgresql://alice:s3cret@127.0.0.1:1/teamdb")
    msg = str(info.value)
    assert "127.0.0.1:1" in msg and "teamdb" in msg and "s3cret" not in msg


def test_env_url_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFLEDGER_URL", str(tmp_path / "from-env"))
    led = Ledger()
    led.log("M", "T", sharpe=1.0)
    assert (tmp_path / "from-env" / "model_performance.json").exists()
    monkeypatch.delenv("PERFLEDGER_URL")
    monkeypatch.chdir(tmp_path)
    assert Ledger().directory == tmp_path / "memory" / "logs"


def _fill(led: Ledger) -> None:
    led.register_metric("sortino", True)
    led.log("A", "AAPL", sharpe=1.5, mse=0.01, notes="x, \"y\"\nz", metrics={"sortino": 2.0},
            params={"lr": 0.01}, tags={"env": "prod"}, timestamp="2024-01-01T00:00:00.123456")
    led.log_many([{"model_name": f"M{i % 3}", "ticker": "MSFT", "sharpe": i / 10,
                   "timestamp": f"2024-02-{i + 1:02d}T00:00:00"} for i in range(20)])


def _same(a: Ledger, b: Ledger) -> None:
    assert a.records() == b.records()
    assert a.best() == b.best()
    assert a.metric_directions() == b.metric_directions()


def test_copy_an_embedded_ledger_into_another_store(tmp_path: Path, any_ledger: Ledger) -> None:
    src = Ledger(tmp_path / "src")
    _fill(src)
    assert src.copy_to(any_ledger) == 21
    _same(src, any_ledger)
    with pytest.raises(Exception, match="already holds 21 records"):
        src.copy_to(any_ledger)  # never duplicates
    _same(src, any_ledger)


def test_copy_into_a_directory_ledger_writes_its_mirrors(tmp_path: Path) -> None:
    src = Ledger(tmp_path / "src")
    _fill(src)
    src.copy_to(tmp_path / "dst")
    dst = Ledger(tmp_path / "dst")
    _same(src, dst)
    for name in ("model_performance.json", "model_performance.csv", "best_models.json"):
        assert (tmp_path / "src" / name).read_bytes() == (tmp_path / "dst" / name).read_bytes()


def test_a_bulk_load_rebuilds_its_indexes_and_keeps_every_row(ledger: Ledger) -> None:
    from perfledger.store.writes import BULK_ROWS

    n = BULK_ROWS + 10
    rows = pd.DataFrame({
        "model_name": [f"M{i % 7}" for i in range(n)],
        "ticker": [f"T{i % 5}" for i in range(n)],
        "timestamp": pd.date_range("2020-01-01", periods=n, freq="min", tz="UTC"),
        "sharpe": [i / n for i in range(n)],
    })
    assert ledger.log_many(rows) == n
    con = sqlite3.connect(ledger.directory / "perfledger.db")
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"ix_pl_records_ticker_ts", "ix_pl_records_model_ticker_ts", "ix_pl_records_ts"} <= names
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    assert len(ledger.history(model_name="M3")) == len([i for i in range(n) if i % 7 == 3])
    assert ledger.history(limit=1)["sharpe"].iloc[0] == (n - 1) / n
    ledger.log("M0", "T0", sharpe=2.0)  # a later single log still finds its indexes
    assert ledger.best("T0")["best_sharpe"]["value"] == 2.0


@pytest.mark.parametrize("fail", [False, True])
def test_a_sqlite_write_transaction_ends_statements_of_both_paths_together(
    ledger: Ledger, fail: bool
) -> None:
    """The write transaction runs BEGIN IMMEDIATE/COMMIT on the driver itself; a statement
    run through SQLAlchemy inside it (import keys) must join it: committed with the rest,
    or rolled back with the rest, and the lock released either way."""
    from perfledger.records.batch import Batch
    from perfledger.records.validation import validate_record

    store = ledger._ensure()
    batch = Batch.from_records([validate_record("M", "T", sharpe=1.0)])
    with pytest.raises(RuntimeError) if fail else contextlib.nullcontext(), store.writing() as tx:
        assert tx.claim_keys(["k1"]) == {"k1"}      # through SQLAlchemy
        tx.insert(batch)                            # through the driver
        if fail:
            raise RuntimeError("boom")
    con = sqlite3.connect(ledger.directory / "perfledger.db", timeout=0.5)
    keys = con.execute("SELECT count(*) FROM pl_import_keys").fetchone()[0]
    records = con.execute("SELECT count(*) FROM pl_records").fetchone()[0]
    con.execute("BEGIN IMMEDIATE")  # the write lock was released
    con.rollback()
    con.close()
    assert (keys, records) == ((0, 0) if fail else (1, 1))
    ledger.log("M", "T", sharpe=2.0)
    assert len(ledger.history()) == (1 if fail else 2)
