"""The SQLite single-record path (store/sqlite/direct.py) against the full store.

Its statements are text constants (no SQLAlchemy to import): each must be what SQLAlchemy
compiles from the schema and the upserts, or, for the reads written by hand, give the full
store's answer on the same database. A ledger logged through it must be byte for byte the
ledger the full path writes (tables and mirror files); anything unusual opens the full store.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from perfledger import Ledger
from perfledger.errors import StorageError
from perfledger.store.base import HistoryQuery
from perfledger.store.migrations import current_version
from perfledger.store.sqlite import statements as S
from perfledger.store.sqlite.direct import DirectStore, open_direct
from perfledger.store.sqlite.store import SQLiteStore, _statements


def test_statements_are_what_sqlalchemy_compiles() -> None:
    st = _statements()
    assert st.insert_records == S.INSERT_RECORDS
    assert st.insert_extra == S.INSERT_EXTRA
    assert st.insert_links == S.INSERT_LINKS
    assert st.insert_returns == S.INSERT_RETURNS
    assert st.upsert["best_hi"] == S.UPSERT_BEST_HI
    assert st.upsert["best_lo"] == S.UPSERT_BEST_LO
    assert st.upsert["summary"] == S.UPSERT_SUMMARY
    assert st.upsert["pairs"] == S.UPSERT_PAIRS
    assert st.upsert["labels"] == S.UPSERT_LABELS
    assert st.upsert["meta"] == S.UPSERT_META
    assert st.get_meta == S.GET_META
    assert st.max_id == S.MAX_ID
    assert st.directions == S.DIRECTIONS
    assert set(st.upsert) == {"best_hi", "best_lo", "summary", "pairs", "labels", "meta"}


def test_schema_constants_are_the_schema() -> None:
    assert current_version() == S.SCHEMA_VERSION
    assert {t.name: frozenset(c.name for c in t.c) for t in SQLiteStore.TABLES} == S.TABLE_COLUMNS


def _logs(led: Ledger) -> None:
    led.register_metric("sortino", higher_is_better=True)
    rows = [
        ("LSTM", "AAPL", {"sharpe": 1.2, "mse": 0.02, "drawdown": -0.1, "win_rate": 0.6},
         {"sortino": 1.5}, {"depth": 6, "lr": 0.1}, {"run": "a"}),
        ("GRU", "AAPL", {"sharpe": 1.2, "mse": 0.01, "accuracy": 0.7}, {"sortino": 0.5, "calmar": 2.0},
         {"depth": 6}, {"run": "b"}),
        ("LSTM", "MSFT", {"total_return": 0.3}, {}, {}, {}),
        ("XGB", "BRK.B", {}, {}, {"grid": [1, 2]}, {}),  # a ticker's first record without a metric
        ("XGB", "AAPL", {"sharpe": 2.5, "drawdown": -0.05}, {}, {}, {"run": "a"}),
        ("XGB", "AAPL", {"sharpe": 2.5}, {}, {}, {}),  # a tie: the earlier stays best
        ("GRU", "MSFT", {"total_return": 0.1}, {"calmar": 1.0}, {}, {}),
    ]
    for i, (model, ticker, core, metrics, params, tags) in enumerate(rows):
        led.log(model, ticker, **core, metrics=metrics or None, params=params or None, tags=tags or None,
                notes=f"run {i}, \"quoted\"\nline", timestamp=f"2026-01-{1 + i % 3:02d}T10:00:00Z")
    led.log_backtest("BT", "AAPL", [0.01, -0.02, 0.03, 0.0, 0.01] * 10,
                     timestamp="2026-01-05T00:00:00Z", params={"k": 1})


def _dump(directory: Path) -> dict[str, list[tuple[object, ...]]]:
    con = sqlite3.connect(directory / "perfledger.db")
    try:
        out = {}
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            if table == "pl_meta":  # the mirrors' state names the files' inodes and mtimes
                rows = [r for r in rows if r[0] != "mirrors"]
            out[table] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def test_a_log_through_it_writes_what_the_full_path_writes(tmp_path: Path) -> None:
    direct, full = tmp_path / "direct", tmp_path / "full"
    for d in (direct, full):
        with Ledger(d) as led:
            led.log("seed", "SPY", sharpe=0.1, timestamp="2025-12-31T00:00:00Z")  # the ledger exists
    with Ledger(direct) as led:
        assert isinstance(led._store, DirectStore) and led._store._direct_writes
        _logs(led)
        assert led._store._direct_writes and led._store._full is not None  # register_metric: full
    with Ledger(full) as led:
        led._store._direct_writes = False  # every write through the full store
        _logs(led)
    assert _dump(direct) == _dump(full)
    for name in ("model_performance.json", "model_performance.csv"):
        assert (direct / name).read_bytes() == (full / name).read_bytes()
    assert (direct / "best_models.json").read_bytes() == (full / "best_models.json").read_bytes()


def test_its_reads_answer_as_the_full_store(tmp_path: Path) -> None:
    with Ledger(tmp_path) as led:
        led.log("seed", "SPY", sharpe=0.1)
        _logs(led)
    store = open_direct(tmp_path / "perfledger.db", ledger=str(tmp_path), guarded=(),
                        full=lambda: pytest.fail("a read it answers opened the full store"))
    assert isinstance(store, DirectStore)
    with Ledger(tmp_path) as led:
        full = led._store.full
        assert store.best() == full.best()
        for ticker in ("AAPL", "MSFT", "BRK.B", "NOPE"):
            assert store.best(ticker) == full.best(ticker)
            assert store.models(ticker) == full.models(ticker)
        assert store.tickers() == full.tickers() == ["AAPL", "BRK.B", "MSFT", "SPY"]
        assert store.models() == full.models()
        assert store.directions() == full.directions()
        assert store.last_id() == full.last_id()
        assert store.get_meta("mirrors") == full.get_meta("mirrors")
        assert store.get_meta("nothing") is None
        # the hand-written pair read: what the full store's history says
        for ticker in ("AAPL", "NOPE"):
            known = store._connection().execute(S.TICKER_KNOWN, (ticker,)).fetchone() is not None
            assert known == (len(full.history(HistoryQuery(tickers=(ticker,))).records) > 0)
    store.dispose()


def test_anything_unusual_opens_the_full_store(tmp_path: Path) -> None:
    db = tmp_path / "perfledger.db"
    assert open_direct(db, ledger=str(tmp_path), guarded=(), full=lambda: None) is None  # absent
    with Ledger(tmp_path) as led:
        led.log("A", "AAPL", sharpe=1.0)
    con = sqlite3.connect(db)
    con.execute("UPDATE pl_meta SET value = '6' WHERE key = 'schema_version'")
    con.commit()
    assert open_direct(db, ledger=str(tmp_path), guarded=(), full=lambda: None) is None  # another version
    con.execute("UPDATE pl_meta SET value = ? WHERE key = 'schema_version'", (str(S.SCHEMA_VERSION),))
    con.execute("DROP TABLE pl_summary")
    con.commit()
    con.close()
    assert open_direct(db, ledger=str(tmp_path), guarded=(), full=lambda: None) is None  # damaged
    with pytest.raises(StorageError) as err:
        Ledger(tmp_path)  # the full store says what is wrong, as before
    assert err.value.cause == "schema"


def test_a_mirror_repair_inside_a_log_runs_again_on_the_full_path(tmp_path: Path) -> None:
    with Ledger(tmp_path) as led:
        led.log("A", "AAPL", sharpe=1.0)
    with Ledger(tmp_path) as led:
        assert isinstance(led._store, DirectStore)
        (tmp_path / "model_performance.csv").unlink()  # deleted after the ledger opened
        led.log("B", "AAPL", sharpe=2.0)
        assert not led._store._direct_writes  # the repair needed the full path
        assert led.best("AAPL")["best_sharpe"]["model"] == "B"
        assert led.stats()["records"] == 2
    lines = (tmp_path / "model_performance.csv").read_text().splitlines()
    assert len(lines) == 3 and '"AAPL","B",2,' in lines[2]


def test_a_full_disk_during_a_direct_log_is_the_disk_full_error(tmp_path: Path) -> None:
    """SQLITE_FULL raised by the driver on the direct path becomes the same StorageError
    (a page-count limit makes SQLite answer SQLITE_FULL, as a full file system does)."""
    with Ledger(tmp_path) as led:
        led.log("A", "AAPL", sharpe=1.0)
    with Ledger(tmp_path) as led:
        store = led._store
        assert isinstance(store, DirectStore)
        pages = store._connection().execute("PRAGMA page_count").fetchone()[0]
        store._connection().execute(f"PRAGMA max_page_count={pages}")
        before = (tmp_path / "model_performance.json").read_bytes()
        with pytest.raises(StorageError) as err:
            for i in range(200):
                led.log("B", "AAPL", sharpe=1.0, notes="x" * 5000 + str(i))
        assert err.value.cause == "disk_full" and "nothing was stored" in str(err.value)
        n = led.stats()["records"]
        assert (tmp_path / "model_performance.json").read_bytes().count(b'"model_name"') == n
        assert before.count(b'"model_name"') <= n


@pytest.mark.slow
def test_a_fresh_process_logs_without_sqlalchemy(tmp_path: Path) -> None:
    with Ledger(tmp_path) as led:
        led.log("A", "AAPL", sharpe=1.0)
    code = ("import sys; from perfledger import Ledger\n"
            f"led = Ledger({str(tmp_path)!r}); led.log('B', 'AAPL', sharpe=2.0, params={{'d': 1}})\n"
            "print(led.best('AAPL')['best_sharpe']['model'], led.tickers())\n"
            "print(sorted(m for m in ('sqlalchemy', 'pandas', 'pyarrow', 'numpy', 'adbc_driver_manager')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["B ['AAPL']", "[]"]


def test_the_short_path_answers_or_hands_over_every_store_method() -> None:
    """Every public method and property of :class:`Store` is defined on the short path's
    store itself (answered there or handed to the full store): one inherited from ``Store``
    would silently answer with the base class's default (an empty list, ``False``), as
    ``returns_matching`` once did (``returns_frame`` came back empty)."""
    import inspect

    from perfledger.store.base import Store
    from perfledger.store.sqlite.direct import DirectStore

    public = [n for n, v in inspect.getmembers(Store)
              if not n.startswith("_") and (callable(v) or isinstance(v, property))]
    assert public and [n for n in public if n not in DirectStore.__dict__] == []


def test_threads_taking_a_new_ledgers_first_logs_at_once(tmp_path: Path) -> None:
    """A new directory opens behind the pending short path; its first log() switches to the
    short path. Several threads doing that at once raced (one read the pending state after
    another had cleared it: TypeError). Twenty new ledgers, eight threads each."""
    import threading

    for round_ in range(20):
        led = Ledger(tmp_path / f"l{round_}")
        errors: list[BaseException] = []
        start = threading.Barrier(8)

        def work(k: int, led: Ledger = led, errors: list[BaseException] = errors,
                 start: threading.Barrier = start) -> None:
            try:
                start.wait()
                for i in range(3):
                    led.log("M", "AAPL", sharpe=k + i / 10, notes=f"{k}-{i}")
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(led.history()["notes"]) == sorted(f"{k}-{i}" for k in range(8) for i in range(3))
        led.close()


def test_what_another_connection_commits_is_noticed_between_direct_logs(tmp_path: Path) -> None:
    """A direct write reads the mirrors' state, max(id) and the directions again only when
    another connection committed since its own last commit (``PRAGMA data_version``): a
    record stored by another ledger without the mirrors, a metric registered and a log by
    another process, each between two logs of the same ledger, must all be seen."""
    with Ledger(tmp_path) as led:
        led.log("A", "AAPL", sharpe=1.0, timestamp="2026-01-01T00:00:00Z")
        led.log("A", "AAPL", sharpe=0.5, timestamp="2026-01-02T00:00:00Z")
        assert isinstance(led._store, DirectStore) and led._store._known is not None
        with Ledger(tmp_path, mirrors=False) as other:  # its own connection, the files untouched
            other.log("B", "MSFT", sharpe=2.0, timestamp="2026-01-03T00:00:00Z")
        # the next direct write sees max(id) moved past the files: the record reaches them
        led.log("A", "AAPL", sharpe=0.25, timestamp="2026-01-04T00:00:00Z")
        subprocess.run([sys.executable, "-c",
                        "import sys; from perfledger import Ledger\n"
                        "with Ledger(sys.argv[1]) as o:\n"
                        "    o.register_metric('sortino', higher_is_better=True)\n"
                        "    o.log('C', 'AAPL', metrics={'sortino': 3.0}, timestamp='2026-01-05')\n",
                        str(tmp_path)], check=True)
        # the directions and the mirrors' state another process committed: read again
        led.log("D", "AAPL", metrics={"sortino": 4.0}, timestamp="2026-01-06T00:00:00Z")
        assert led.best("AAPL")["best_sortino"]["model"] == "D"
        assert led._mirrors_in_step()
    rows = (tmp_path / "model_performance.csv").read_text().splitlines()[1:]
    assert [r.split(",")[2] for r in rows] == ['"A"', '"A"', '"B"', '"A"', '"C"', '"D"']
    assert [r["model_name"] for r in json.loads((tmp_path / "model_performance.json").read_text())] == [
        "A", "A", "B", "A", "C", "D"]
    best = json.loads((tmp_path / "best_models.json").read_text())
    assert best["AAPL"]["best_sortino"]["model"] == "D" and best["MSFT"]["best_sharpe"]["model"] == "B"
