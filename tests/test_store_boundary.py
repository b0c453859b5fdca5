"""The store boundary: driver errors become perfledger errors in one place, by code; reads
that overlapped a change they cannot see through run again in one place; the command line
tells a user's problem (exit 2, one line) from a bug (exit 1).

Each failure is provoked for real: a database file damaged under an open ledger, a table
dropped from a PostgreSQL ledger, an owner writing while a read-only reader reads.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from perfledger import Ledger, PerfLedgerError
from perfledger.cli import app
from perfledger.errors import StorageError, ValidationError
from perfledger.location import resolve
from perfledger.store.base import HistoryQuery, TailQuery
from perfledger.store.sqlite.readonly import ReadOnlyFile
from perfledger.store.sqlite.store import SQLiteStore


def _damage(db: Path, first_page: int = 0) -> None:
    """Overwrite every page from ``first_page`` on (but the header's first bytes) with
    garbage, in place (same inode): what a failing disk or another program writing into the
    file leaves. The log is checkpointed into the file first, so no page is left to read
    intact from the WAL. From past the last root page on (:func:`_past_the_schema`), the schema
    still reads: only records are damaged."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    size = db.stat().st_size
    with open(db, "r+b") as f:
        for offset in range(max(first_page * 4096, 100), size, 4096):
            f.seek(offset + (50 if first_page else 0))
            f.write(os.urandom(min(2000 if first_page else 4096, size - offset)))


def _past_the_schema(db: Path) -> int:
    """The first page after every table's and index's root page: damaging from there on
    leaves the schema (and the small tables: meta, directions) readable, the records not."""
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT MAX(rootpage) FROM sqlite_master").fetchone()[0])
    finally:
        con.close()


def _full(tmp_path: Path) -> Ledger:
    led = Ledger(tmp_path / "ledger")
    led.log_many([{"model_name": f"M{i % 3}", "ticker": "AAPL", "sharpe": i / 10, "params": {"k": i % 2}}
                   for i in range(300)])
    return led


READS: dict[str, Callable[[Ledger], Any]] = {
    "history": lambda led: led.history(ticker="AAPL"),
    "best": lambda led: led.best("AAPL"),
    "tickers": lambda led: led.tickers(),
    "leaderboard": lambda led: led.leaderboard("AAPL", by="param:k"),
    "params": lambda led: led.params(),
    "decay": lambda led: led.decay(recent=5),
    "stats": lambda led: led.stats(),
}


@pytest.mark.parametrize("read", list(READS))
def test_a_database_damaged_under_an_open_ledger_is_a_storage_error(tmp_path: Path, read: str) -> None:
    led = _full(tmp_path)
    led.history()  # connections open, pages cached: the damage happens under a live ledger
    _damage(tmp_path / "ledger" / "perfledger.db")
    with pytest.raises(PerfLedgerError) as info:
        for _ in range(3):  # a cached page may answer once
            READS[read](led)
            led.close()  # the next read opens fresh connections, which read the damaged file
    error = info.value
    assert isinstance(error, StorageError) and error.cause == "damaged", repr(error)
    assert "perfledger.db" in str(error) and "\n" not in str(error)
    assert not isinstance(error.__cause__, PerfLedgerError)  # the driver's, kept for debugging


def test_a_write_into_a_damaged_database_stores_nothing_and_says_so(tmp_path: Path) -> None:
    led = _full(tmp_path)
    _damage(tmp_path / "ledger" / "perfledger.db")
    led.close()
    with pytest.raises(StorageError) as info:
        led.log("M0", "AAPL", sharpe=9.0)
    assert info.value.cause == "damaged" and "nothing was stored" in str(info.value)


def test_the_command_line_reports_a_damaged_database_in_one_line(tmp_path: Path) -> None:
    _full(tmp_path).close()
    _damage(tmp_path / "ledger" / "perfledger.db")
    result = CliRunner().invoke(app, ["--store", str(tmp_path / "ledger"), "history"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and "damaged" in lines[0] and "unexpected" not in lines[0]


def test_a_bug_is_not_reported_as_the_users_mistake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ValueError or TypeError from inside the library is a bug: exit 1, "unexpected"."""
    _full(tmp_path).close()

    def broken(self: Ledger) -> list[str]:
        raise ValueError("an internal invariant failed")

    monkeypatch.setattr(Ledger, "tickers", broken)
    result = CliRunner().invoke(app, ["--store", str(tmp_path / "ledger"), "tickers"])
    assert result.exit_code == 1 and "unexpected ValueError" in result.stderr, result.stderr


@pytest.mark.postgres
def test_a_dropped_postgresql_table_is_a_storage_error(pg_ledger: Ledger, pg_server_url: str) -> None:
    pg_ledger.log("M", "AAPL", sharpe=1.0)
    engine = sa.create_engine(pg_server_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE pl_summary RENAME TO pl_summary_gone")
        for call in (lambda: pg_ledger.leaderboard("AAPL"), lambda: pg_ledger.log("M", "AAPL", sharpe=2.0)):
            with pytest.raises(StorageError) as info:
                call()
            assert info.value.cause == "schema" and "pl_summary" in str(info.value)
        assert len(pg_ledger.history()) == 1  # the failed log stored nothing
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE pl_summary_gone RENAME TO pl_summary")
        engine.dispose()


QUERIES: dict[str, Callable[[SQLiteStore], Any]] = {
    "history": lambda s: s.history(HistoryQuery()).records.num_rows,
    "count": lambda s: s.count(HistoryQuery()),
    "labels": lambda s: sorted(r[3] for r in s.labels()),
    "metric_tails": lambda s: s.metric_tails(TailQuery(metric="sharpe")).num_rows,
    "leaderboard": lambda s: sorted(r[2] for r in s.leaderboard_stats(HistoryQuery(), None)[1]),
    "best": lambda s: s.best("AAPL")["best_sharpe"]["value"],
    "stats": lambda s: s.stats()["records"],
}
AFTER = {"history": 2, "count": 2, "labels": [2], "metric_tails": 2, "leaderboard": [2], "best": 2.0,
         "stats": 2}


@pytest.mark.parametrize("query", list(QUERIES))
def test_every_read_that_overlaps_a_change_of_an_immutable_file_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    """A reader that may only read a closed ledger opens it immutable; when the owner changes
    the file during the read (its checkpoint), every kind of read runs again and sees the new
    state: the retry lives at the store boundary, not in each read."""
    directory = tmp_path / "ledger"
    with Ledger(directory) as owner:
        owner.log("M", "AAPL", sharpe=1.0, params={"k": 1})
    store = SQLiteStore(resolve(directory).url, read_only=True)
    opened: list[bool] = []
    original = ReadOnlyFile.uri

    def uri(self: ReadOnlyFile) -> tuple[str, Any]:
        text, signature = original(self)
        opened.append(signature is not None)
        if len(opened) == 1:  # the owner logs and closes: a checkpoint rewrites the file
            with Ledger(directory) as writer:
                writer.log("M", "AAPL", sharpe=2.0, params={"k": 1})
        return text, signature

    monkeypatch.setattr(ReadOnlyFile, "uri", uri)
    try:
        assert QUERIES[query](store) == AFTER[query]
        assert opened[0] is True and len(opened) > 1  # read immutable, then again
    finally:
        store.dispose()


def test_a_copy_from_a_damaged_source_names_the_source(tmp_path: Path) -> None:
    """The copy reads the source inside the target's write transaction: the error must name
    the damaged source, not the healthy target, and the target stays empty."""
    source = _full(tmp_path)
    source.close()
    db = tmp_path / "ledger" / "perfledger.db"
    _damage(db, first_page=_past_the_schema(db))
    target = tmp_path / "target"
    with pytest.raises(StorageError) as info:
        Ledger(tmp_path / "ledger").copy_to(target)
    assert str(tmp_path / "ledger" / "perfledger.db") in str(info.value)
    assert str(target) not in str(info.value)
    with Ledger(target) as led:
        assert led.stats()["records"] == 0


@pytest.mark.parametrize("sql", ["DROP TABLE pl_best", "ALTER TABLE pl_summary RENAME TO pl_summary_old",
                                 "ALTER TABLE pl_records DROP COLUMN notes"])
def test_a_sqlite_table_dropped_under_an_open_ledger_is_a_storage_error(tmp_path: Path, sql: str) -> None:
    led = _full(tmp_path)
    led.history()
    con = sqlite3.connect(tmp_path / "ledger" / "perfledger.db")
    con.execute(sql)
    con.commit()
    con.close()
    calls = [lambda: led.log("M0", "AAPL", sharpe=9.0), lambda: led.leaderboard("AAPL"),
             lambda: led.best("AAPL"), lambda: led.history()]
    failures = []
    for call in calls:
        try:
            call()
        except StorageError as exc:
            assert exc.cause == "schema", repr(exc)
            failures.append(exc)
    assert failures  # every call that touches the altered table says so; none raises a driver error
    result = CliRunner().invoke(app, ["--store", str(tmp_path / "ledger"), "leaderboard", "--ticker", "AAPL"])
    assert result.exit_code in (0, 2) and "unexpected" not in result.stderr, result.stderr


@pytest.mark.postgres
def test_a_postgresql_role_that_may_not_read_is_told_so(pg_ledger: Ledger, pg_server_url: str) -> None:
    pg_ledger.log("M", "AAPL", sharpe=1.0)
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("DROP ROLE IF EXISTS pl_no_read")
        conn.exec_driver_sql("CREATE ROLE pl_no_read LOGIN")
        conn.exec_driver_sql("GRANT SELECT ON pl_meta TO pl_no_read")  # it may open, not read records
    try:
        url = sa.make_url(pg_server_url).set(username="pl_no_read").render_as_string(hide_password=False)
        with Ledger(url) as led, pytest.raises(StorageError) as info:
            led.history()
        assert info.value.cause == "permission" and "pl_no_read" in str(info.value)
        assert "read-only" not in str(info.value)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM pl_no_read")
            conn.exec_driver_sql("DROP ROLE pl_no_read")
        admin.dispose()


def test_stores_that_name_no_ledger_are_refused_naming_the_store(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a ledger")
    for location in (a_file, a_file / "below", f"sqlite:///{tmp_path}/missing/dir/ledger.db"):
        with pytest.raises(ValidationError) as info:
            Ledger(location)
        assert info.value.problems[0][1] == "store"
    assert a_file.read_text() == "not a ledger" and not (tmp_path / "missing").exists()


def test_an_export_never_overwrites_the_ledgers_own_files(tmp_path: Path) -> None:
    from perfledger.files.exporter import export_records

    led = _full(tmp_path)
    directory = tmp_path / "ledger"
    before = {p.name: p.read_bytes() for p in directory.iterdir() if p.name.startswith("model_")}
    for name, fmt in (("model_performance.json", "json"), ("model_performance.csv", "csv"),
                      ("perfledger.db", "parquet")):
        with pytest.raises(ValidationError, match="the ledger's own files"):
            export_records(led, fmt, directory / name)
    with pytest.raises(ValidationError, match="own directory"):
        led.export_seed_files(directory)
    assert {p.name: p.read_bytes() for p in directory.iterdir() if p.name in before} == before
    led.log("M0", "AAPL", sharpe=9.0)  # the ledger still writes beside its files


@pytest.mark.slow
def test_a_reader_that_may_only_read_never_fails_while_the_owner_opens_and_closes(tmp_path: Path) -> None:
    """The owner logs from short-lived processes (each close checkpoints and removes the
    write-ahead log); a reader that may only read opens the log read-only when it exists.
    A read that loses that race is run again: no read fails."""
    import subprocess
    import sys
    import time

    directory = tmp_path / "ledger"
    _full(tmp_path).close()
    owner = ("import sys, time\nfrom perfledger import Ledger\nend = time.time() + 6\ni = 0\n"
             "while time.time() < end:\n    with Ledger(sys.argv[1]) as l:\n"
             "        l.log('W', 'T%d' % (i % 2), sharpe=i / 1000, params={'p': i % 5})\n    i += 1\n")
    proc = subprocess.Popen([sys.executable, "-c", owner, str(directory)])
    store = SQLiteStore(resolve(directory).url, read_only=True)
    reads = 0
    try:
        end = time.time() + 5
        while time.time() < end:
            assert store.history(HistoryQuery()).records.num_rows >= 300
            store.labels()
            reads += 1
    finally:
        proc.wait(timeout=60)
        store.dispose()
    assert proc.returncode == 0 and reads > 20


def test_a_cell_the_driver_cannot_read_back_is_a_damaged_file(tmp_path: Path) -> None:
    """Bytes in a text cell that are not UTF-8 (a damaged page, another tool's write): the
    driver raises its own error without SQLite's code; it is the damaged source's
    StorageError, for a read and for a copy (CI saw the raw driver error after a random
    damage landed in a row)."""
    import sqlite3

    with Ledger(tmp_path / "ledger") as led:
        led.log("M", "T", sharpe=1.0, notes="fine")
    con = sqlite3.connect(tmp_path / "ledger" / "perfledger.db")
    con.execute("UPDATE pl_records SET notes = CAST(x'ff00fe' AS TEXT)")
    con.commit()
    con.close()
    with pytest.raises(StorageError) as info:
        Ledger(tmp_path / "ledger").copy_to(tmp_path / "target")
    assert info.value.cause == "damaged" and str(tmp_path / "ledger") in str(info.value)
