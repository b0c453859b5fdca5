"""Smaller things found in the same review (issue 10, item 7): each one a real input, run
through the public API or the real command line, and the ledger checked afterwards."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from cli_runner import Completed, run_cli

from perfledger import Ledger, ValidationError
from perfledger.files.importer import import_file


def cli(*args: str, cwd: Path) -> Completed:
    return run_cli(*args, cwd=cwd)


def one_error_line(result: Completed) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    return lines[0]


def snapshot(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


# ------------------------------------------------------------------ --store "" (regression)

@pytest.mark.parametrize("command", [("tickers",), ("log", "--model", "M", "--ticker", "A", "--sharpe", "1")])
def test_empty_store_is_refused_not_the_current_directory(tmp_path: Path, command: tuple[str, ...]) -> None:
    line = one_error_line(cli("--store", "", *command, cwd=tmp_path))
    assert "store" in line and "empty" in line
    assert list(tmp_path.iterdir()) == []  # no memory/, no perfledger.db here


# ------------------------------------------------------------------ duplicated columns

@pytest.mark.parametrize("dup", ["sharpe", "my_metric", "model_name"])
def test_log_many_duplicate_columns(tmp_path: Path, dup: str) -> None:
    frame = pd.DataFrame([["M", "AAPL", 1.0, "N", 2.0]], columns=["model_name", "ticker", "sharpe", dup, "z"])
    frame = frame.set_axis(["model_name", "ticker", "sharpe", dup, dup], axis=1)
    with Ledger(tmp_path / "l") as led:
        with pytest.raises(ValidationError, match=rf"duplicated column\(s\) '{dup}'") as info:
            led.log_many(frame)
        assert info.value.problems[0][1] == dup
        assert led.history().empty


def test_csv_with_a_duplicated_header_imports_nothing(tmp_path: Path) -> None:
    path = tmp_path / "runs.csv"
    path.write_text("timestamp,model_name,ticker,sharpe,sharpe\n"
                    "2024-01-02T00:00:00+00:00,M,AAPL,1.5,-3.0\n")
    with Ledger(tmp_path / "l") as led:
        with pytest.raises(ValidationError, match=r"runs\.csv.*'sharpe' more than once"):
            import_file(led, path)
        assert led.history().empty
    line = one_error_line(cli("--store", str(tmp_path / "l"), "import", str(path), cwd=tmp_path))
    assert "runs.csv" in line and "'sharpe'" in line
    with Ledger(tmp_path / "l") as led:
        assert led.history().empty


def test_register_metric_reserved_name_message(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l") as led, pytest.raises(ValidationError) as info:
        led.register_metric("sharpe", True)
    assert str(info.value).startswith("name 'sharpe' is reserved") and "name name" not in str(info.value)
    with Ledger(tmp_path / "l") as led, pytest.raises(ValidationError) as info:
        led.register_metric("no spaces", True)
    assert str(info.value).startswith("name 'no spaces' is not an identifier")


# ------------------------------------------------------------------ someone else's database

def foreign_db(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers VALUES (1, 'Ada')")
    conn.commit()
    conn.close()


def tables(path: Path) -> list[str]:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"))
    finally:
        conn.close()


@pytest.mark.parametrize("command", [("tickers",), ("history",), ("best",),
                                     ("log", "--model", "M", "--ticker", "A", "--sharpe", "1")])
def test_unrelated_sqlite_database_is_refused_untouched(tmp_path: Path, command: tuple[str, ...]) -> None:
    db = tmp_path / "other.db"
    foreign_db(db)
    before = snapshot(tmp_path)
    line = one_error_line(cli("--store", f"sqlite:///{db}", *command, cwd=tmp_path))
    assert str(db) in line and "not a perfledger ledger" in line and "customers" in line
    assert snapshot(tmp_path) == before  # same bytes, no -wal/-shm, no backup
    assert tables(db) == ["customers"]
    with pytest.raises(ValidationError, match="not a perfledger ledger"):
        Ledger(f"sqlite:///{db}")
    assert snapshot(tmp_path) == before


def test_empty_databases_and_ledgers_still_open(tmp_path: Path) -> None:
    empty_file = tmp_path / "empty.db"
    empty_file.touch()
    no_tables = tmp_path / "vacuumed.db"
    conn = sqlite3.connect(no_tables)
    conn.execute("PRAGMA user_version = 1")  # a valid database file with no table
    conn.close()
    assert no_tables.stat().st_size > 0
    for db in (empty_file, no_tables, tmp_path / "new.db"):
        with Ledger(f"sqlite:///{db}") as led:
            led.log("M", "AAPL", sharpe=1.0)
        with Ledger(f"sqlite:///{db}") as led:  # and reopens as a ledger
            assert len(led.history()) == 1
        assert "pl_records" in tables(db)


# ------------------------------------------------------------------ relative URL + chdir (regression)

def test_relative_sqlite_url_is_resolved_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(here)
    with Ledger("sqlite:///rel.db") as led:
        led.log("M", "AAPL", sharpe=1.0)
        monkeypatch.chdir(elsewhere)
        assert len(led.history(ticker="AAPL")) == 1
        assert len(led.history()) == 1
        led.log("M", "AAPL", sharpe=2.0)
        assert list(led.history()["sharpe"]) == [1.0, 2.0]
    assert list(elsewhere.iterdir()) == []
    assert (here / "rel.db").exists()


def test_the_foreign_check_writes_nothing_to_a_ledger(tmp_path: Path) -> None:
    # The check runs before every open; on a closed WAL ledger (no -wal file) it must not
    # leave one behind (a read-only reader would then read it mode=ro, not immutable).
    from perfledger.store.sqlite.database_file import refuse_foreign as refuse_foreign_sqlite

    with Ledger(tmp_path / "l") as led:
        led.log("M", "AAPL", sharpe=1.0)
    before = snapshot(tmp_path / "l")
    refuse_foreign_sqlite(tmp_path / "l" / "perfledger.db", "the ledger")
    assert snapshot(tmp_path / "l") == before
