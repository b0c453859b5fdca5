"""Never run on a damaged schema; never create tables where they do not belong (issue 20, item 6).

Real tables are dropped (and columns, and ``pl_meta``) with plain SQL, as a careless admin or
another tool would, on both engines. A ledger whose schema is incomplete is refused at open
with one line naming what is missing (``StorageError``, ``cause="schema"``; CLI exit 2) and
nothing is changed; ``perfledger repair`` recreates what is missing and recomputes every
derived table from the records (checked against a computation written here); a ledger whose
records table is gone is refused by the repair too, pointing at the mirrors and backups, and
nothing is created. A PostgreSQL database holding another application's tables is refused, as
a SQLite file already was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cli_runner import run_cli
from conftest import fresh_pg_database
from helpers import DIRECTIONS, normalise_best, recompute_best

from perfledger import Ledger, NotALedgerError, StorageError


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(what to open, its SQLAlchemy URL): a ledger directory, or a new PostgreSQL database."""
    if request.param == "sqlite":
        directory = tmp_path / "ledger"
        yield str(directory), f"sqlite:///{directory / 'perfledger.db'}"
        return
    with fresh_pg_database("pl_damage") as url:
        yield url, url


def _sql(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for stmt in statements:
            conn.exec_driver_sql(stmt)
    engine.dispose()


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sorted(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _fill(where: str) -> dict[str, Any]:
    with Ledger(where) as led:
        led.register_metric("sortino", True)
        led.log_many([
            {"model_name": f"M{i % 3}", "ticker": ("AAPL", "MSFT")[i % 2], "sharpe": (i * 7 % 11) / 10,
             "mse": (i % 5) / 100, "sortino": float(i % 4), "params": {"depth": i % 3},
             "tags": {"run": f"r{i % 2}"}, "timestamp": f"2024-03-{i % 28 + 1:02d}T{i % 24:02d}:00:00Z"}
            for i in range(60)
        ])
        return _reads(led)


def _reads(led: Ledger) -> dict[str, Any]:
    board = led.leaderboard().sort_values(["ticker", "model_name"]).reset_index(drop=True)
    return {"best": led.best(), "board": board.to_json(date_format="iso"), "params": led.params(),
            "tags": led.tags(),
            "tickers": led.tickers(), "stats": {k: v for k, v in led.stats().items() if k != "state"},
            "history": led.history(ticker="AAPL", params={"depth": 1}).to_json(date_format="iso")}


def _refused(where: str, *missing: str) -> StorageError:
    with pytest.raises(StorageError) as info:
        Ledger(where)
    assert info.value.cause == "schema"
    for name in missing:
        assert name in str(info.value)
    assert "\n" not in str(info.value)
    return info.value


@pytest.mark.parametrize("table", ["pl_summary", "pl_best", "pl_pairs", "pl_labels"])
def test_a_dropped_derived_table_is_refused_and_repair_recomputes_it(store: tuple[str, str],
                                                                     table: str) -> None:
    where, url = store
    before = _fill(where)
    _sql(url, f"DROP TABLE {table}")
    tables = _tables(url)
    error = _refused(where, table)
    assert "perfledger repair" in str(error)
    cli = run_cli("--store", where, "leaderboard")
    assert cli.returncode == 2 and cli.stderr.startswith("Error: ") and table in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1
    assert "[SQL" not in cli.stderr and "Programming" not in cli.stderr
    logged = run_cli("--store", where, "log", "--model", "X", "--ticker", "AAPL", "--sharpe", "1")
    assert logged.returncode == 2 and table in logged.stderr
    assert _tables(url) == tables  # refused: nothing created, nothing written

    repaired = run_cli("--store", where, "repair")
    assert repaired.returncode == 0, repaired.stderr
    assert f"recreated {table}" in repaired.stdout and "60 record(s)" in repaired.stdout
    with Ledger(where) as led:
        assert _reads(led) == before
        want = recompute_best(led.history(), {**DIRECTIONS, "sortino": True})
        assert normalise_best(led.best()) == normalise_best(want)


def test_wrong_derived_rows_and_a_lost_column_are_recomputed(store: tuple[str, str]) -> None:
    where, url = store
    before = _fill(where)
    _sql(url, "UPDATE pl_best SET value = 99, model_name = 'ghost'", "DELETE FROM pl_pairs",
         "ALTER TABLE pl_summary DROP COLUMN m2")
    _refused(where, "pl_summary.m2")
    done = Ledger.repair(where)
    assert "rebuilt pl_summary (it had lost columns)" in done
    with Ledger(where) as led:
        assert _reads(led) == before


def test_a_ledger_without_its_records_is_refused_and_never_recreated_empty(store: tuple[str, str]) -> None:
    where, url = store
    _fill(where)
    _sql(url, "DROP TABLE pl_records", "DROP TABLE pl_meta")
    tables = _tables(url)
    error = _refused(where, "pl_records", "pl_meta")
    assert "backup" in str(error) and "perfledger --store" in str(error) and " import " in str(error)
    for args in (("tickers",), ("best", "--ticker", "AAPL"), ("repair",)):
        r = run_cli("--store", where, *args)
        assert r.returncode == 2 and "pl_records" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    with pytest.raises(StorageError, match="records table itself is gone") as info:
        Ledger.repair(where)
    assert info.value.cause == "schema"
    assert _tables(url) == tables  # nothing recreated beside the surviving derived tables


def test_a_lost_meta_is_refused_and_repair_stamps_it(store: tuple[str, str]) -> None:
    where, url = store
    before = _fill(where)
    _sql(url, "DROP TABLE pl_meta")
    _refused(where, "pl_meta")
    assert any("pl_meta" in line for line in Ledger.repair(where))
    with Ledger(where) as led:
        assert _reads(led) == before
        led.log("After", "AAPL", sharpe=5.0)
        assert led.best("AAPL")["best_sharpe"]["model"] == "After"


def test_another_applications_postgresql_database_is_refused_and_left_alone() -> None:
    with fresh_pg_database("pl_appdb") as url:
        _sql(url, "CREATE TABLE customers (id int primary key, name text)",
             "CREATE TABLE orders (id int primary key)")
        with pytest.raises(NotALedgerError, match="customers, orders"):
            Ledger(url)
        for args in (("tickers",), ("log", "--model", "M", "--ticker", "AAPL", "--sharpe", "1"), ("stats",)):
            r = run_cli("--store", url, *args)
            assert r.returncode == 2 and "not a perfledger ledger" in r.stderr
            assert len(r.stderr.strip().splitlines()) == 1
        assert _tables(url) == ["customers", "orders"]


@pytest.mark.parametrize("engine", ["sqlite-url", "directory", "postgres"])
def test_a_read_never_creates_a_ledger(engine: str, tmp_path: Path) -> None:
    """Reads of a store that holds no ledger answer as an empty ledger and create no table
    (on PostgreSQL, in an empty database); the first write creates it, and another process's
    first write is seen by a ledger opened before it."""
    with contextlib.ExitStack() as stack:
        if engine == "postgres":
            where = url = stack.enter_context(fresh_pg_database("pl_empty"))
        elif engine == "directory":
            where, url = str(tmp_path / "new"), f"sqlite:///{tmp_path / 'new' / 'perfledger.db'}"
        else:
            where = url = f"sqlite:///{tmp_path / 'x.db'}"
        _reads_create_nothing(engine, where, url)


def _reads_create_nothing(engine: str, where: str, url: str) -> None:
    with Ledger(where) as led:
        assert led.history().empty and led.history(ticker="AAPL", include_meta=True).empty
        assert led.best() == {} and led.best("AAPL") == {} and led.tickers() == [] and led.models() == []
        assert led.leaderboard().empty and led.decay().empty
        assert led.records() == [] and led.params() == {} and led.count() == 0
        assert led.stats()["records"] == 0 and led.info()["schema_version"] is None
        for args in (("tickers",), ("history",), ("best", "--ticker", "AAPL"), ("leaderboard",),
                     ("stats",)):
            r = run_cli("--store", where, *args)
            assert r.returncode == 0, (args, r.stderr)
        assert "no ledger here yet" in run_cli("--store", where, "stats").stdout
        assert "nothing to repair" in run_cli("--store", where, "repair").stdout
        if engine == "postgres":
            assert not [t for t in _tables(url) if t.startswith("pl_")]
        else:  # nothing on disk at all: no database file, no directory, no mirror file
            assert not Path(sa.make_url(url).database or "").exists()
            assert engine != "directory" or not Path(where).exists()
        with Ledger(where) as other:  # another writer's first write creates it
            other.log("M", "AAPL", sharpe=1.5)
        assert led.best("AAPL")["best_sharpe"]["value"] == 1.5 and len(led.history()) == 1
        led.log("N", "AAPL", sharpe=2.5)
        assert len(led.history()) == 2
    assert "pl_records" in _tables(url)
