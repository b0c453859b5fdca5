"""Columnar reads on PostgreSQL (issue 11, item 1): ADBC into Arrow, the row path as fallback.

Both paths must give identical frames; the fallback must work when the driver is missing;
the connection must carry everything the URL says (options, sslmode, a unix-socket host)
and no message may show its password; a process that read and then forks keeps working.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pandas.testing as pdt
import pytest
import sqlalchemy as sa

from perfledger import Ledger
from perfledger.store.postgres import arrow as columnar_pg
from perfledger.store.postgres.arrow import PostgresArrow as PgColumnarReader

pytestmark = pytest.mark.postgres

WORKER = Path(__file__).parent / "workers" / "fork_after_reads.py"


def _fill(led: Ledger) -> None:
    led.register_metric("ic", higher_is_better=True)
    led.log_many([
        {"model_name": f"M{i % 4}", "ticker": ("T1", "T2", "Ünï")[i % 3],
         "sharpe": None if i % 11 == 0 else i / 7, "mse": None if i % 2 else 0.01 * (i % 9),
         "drawdown": -0.001 * (i % 13), "win_rate": None if i % 5 else 0.5,
         "notes": ("naïve — 日本語 \"q\"", "", "a,b\nc")[i % 3],
         "params": {"lr": (i % 4) / 10, "depth": i % 3, "layers": [1, i % 2]} if i % 4 else None,
         "tags": {"run": "nightly" if i % 7 == 0 else "adhoc"} if i % 3 else None,
         "metrics": {"ic": i / 9, "turnover": 1e99 if i == 6 else i * 1.5} if i % 6 == 0 else None,
         "timestamp": f"2024-0{1 + i % 6}-1{i % 10}T0{i % 10}:00:00.{i:06d}+00:00"}
        for i in range(600)
    ])


def _reads(led: Ledger) -> list[Any]:
    """Everything that returns many rows, as users get it."""
    return [
        led.history(),
        led.history(include_meta=True),
        led.history(ticker="T1", include_meta=True),
        led.history(ticker=["T1", "Ünï"], model_name="M1"),
        led.history(ticker="T2", params={"depth": 1}, tags={"run": "adhoc"}, include_meta=True),
        led.history(params={"layers": (1, 1)}),
        led.history(ticker="T1", limit=7, include_meta=True),
        led.history(since="2024-03-01", until="2024-05-01", at_least={"sharpe": 10.0}),
        led.history(at_least={"ic": 5.0}),
        led.history(ticker="nobody"),
        led.records(ticker="T1"),
        led.leaderboard(),
        led.leaderboard("T1", days_back=100_000),
        led.leaderboard(by="param:depth", since="2024-01-01"),
        led.decay(recent=3, baseline=10),
    ]


@pytest.fixture
def filled(pg_ledger: Ledger) -> Ledger:
    _fill(pg_ledger)
    return pg_ledger


def _missing_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the ``postgres`` extra had been installed without the ADBC driver."""
    for name in list(sys.modules):
        if name.startswith("adbc_driver_postgresql"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "adbc_driver_postgresql", None)


def test_both_paths_give_identical_answers(filled: Ledger, pg_server_url: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = PgColumnarReader.read
    monkeypatch.setattr(PgColumnarReader, "read",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    assert isinstance(filled._store._arrow, PgColumnarReader)
    columnar = _reads(filled)
    assert len(calls) >= 15  # every read above went through the driver

    _missing_driver(monkeypatch)
    with Ledger(pg_server_url) as rows_only:
        assert rows_only._store._arrow is None
        by_rows = _reads(rows_only)
    for i, (got, want) in enumerate(zip(columnar, by_rows, strict=True)):
        if isinstance(got, pd.DataFrame):
            pdt.assert_frame_equal(got, want, obj=f"read {i}")
        else:
            assert got == want
    full = columnar[1]
    assert str(full["timestamp"].dtype) == "datetime64[us, UTC]"
    assert full["sharpe"].isna().sum() == 55 and full["mse"].isna().sum() == 300
    assert set(full["notes"]) == {"naïve — 日本語 \"q\"", "", "a,b\nc"}
    assert full["turnover"].max() == 1e99 and full["ic"].notna().sum() == 100
    assert full.loc[full["params"].map(bool), "params"].iloc[0]["layers"] in ([1, 0], [1, 1])
    assert len(columnar[3]) and set(columnar[3]["model_name"]) == {"M1"}


def test_a_missing_driver_falls_back_to_the_row_path(pg_server_url: str, pg_ledger: Ledger,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pg_ledger.log("M", "T", sharpe=1.0, notes="é")
    _missing_driver(monkeypatch)
    assert not columnar_pg.available()
    with Ledger(pg_server_url) as led:
        assert led._store._arrow is None
        assert led.history(ticker="T")["notes"].tolist() == ["é"]


def test_a_driver_that_fails_to_load_is_dropped_once(pg_ledger: Ledger,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pg_ledger.log("M", "T", sharpe=1.0)
    store = pg_ledger._store
    store._arrow.close()  # no pooled connection: the next read imports the driver
    _missing_driver(monkeypatch)
    assert pg_ledger.history(ticker="T")["sharpe"].tolist() == [1.0]
    assert store._arrow is None  # not tried again on every read


def _reader(url: str) -> PgColumnarReader:
    engine = sa.create_engine(_psycopg(url))
    try:
        return PgColumnarReader(engine)
    finally:
        engine.dispose()


def _psycopg(url: str) -> sa.URL:
    return sa.make_url(url).set(drivername="postgresql+psycopg")


def test_the_url_options_reach_the_columnar_connection(pg_server_url: str) -> None:
    url = _psycopg(pg_server_url).update_query_dict(
        {"options": "-c statement_timeout=4321 -c application_name=pl_col", "sslmode": "disable"})
    reader = _reader(url.render_as_string(hide_password=False))
    table = reader.read("SELECT current_setting('statement_timeout') AS t, "
                        "current_setting('application_name') AS a, "
                        "CAST(:n AS BIGINT) + 1 AS n, CAST(:s AS TEXT) AS s", {"n": 41, "s": "x::y"})
    assert table.to_pylist() == [{"t": "4321ms", "a": "pl_col", "n": 42, "s": "x::y"}]
    reader.close()


@pytest.mark.skipif(not Path("/var/run/postgresql/.s.PGSQL.5432").exists(), reason="no local socket")
def test_a_unix_socket_host_works(pg_server_url: str) -> None:
    base = _psycopg(pg_server_url)
    url = base.set(host=None, port=None).update_query_dict({"host": "/var/run/postgresql"})
    with Ledger(url.render_as_string(hide_password=False)) as led:
        led.log("M", "SOCK", sharpe=2.0)
        reader = led._store._arrow
        assert isinstance(reader, PgColumnarReader)
        assert reader.read("SELECT inet_server_addr() IS NULL AS local", {}).to_pylist() == [{"local": True}]
        assert led.history(ticker="SOCK")["sharpe"].tolist() == [2.0]
        led.clear()


def test_a_failing_columnar_connection_never_shows_the_password(caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-p@ss w'rd"
    url = sa.URL.create("postgresql+psycopg", username="nobody", password=secret, host="127.0.0.1",
                        port=1, database="nothing")
    reader = _reader(url.render_as_string(hide_password=False))
    assert "password='s3cr3t-p@ss w\\'rd'" in reader._conninfo  # quoted for libpq, whole
    with pytest.raises(Exception) as info:
        reader.read("SELECT 1 AS one", {})
    assert "s3cr3t" not in str(info.value) and "s3cr3t" not in repr(info.value)


def test_a_read_only_role_reads_through_the_driver(filled: Ledger, pg_server_url: str) -> None:
    url = _psycopg(pg_server_url)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("DROP ROLE IF EXISTS pl_col_reader")
        conn.exec_driver_sql("CREATE ROLE pl_col_reader LOGIN")
        conn.exec_driver_sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO pl_col_reader")
    try:
        with Ledger(url.set(username="pl_col_reader").render_as_string(hide_password=False)) as led:
            assert isinstance(led._store._arrow, PgColumnarReader)
            pdt.assert_frame_equal(led.history(ticker="T1", include_meta=True),
                                   filled.history(ticker="T1", include_meta=True))
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM pl_col_reader")
            conn.exec_driver_sql("DROP ROLE pl_col_reader")
        admin.dispose()


@pytest.fixture
def fork_url(pg_server_url: str, pg_ledger: Ledger) -> Iterator[str]:
    yield pg_server_url


@pytest.mark.slow
def test_a_process_that_read_then_forks_a_pool_keeps_working(fork_url: str) -> None:
    """The PostgreSQL twin of tests/test_fork_memory.py: children (a Pool(4) and one that
    exits normally) must neither use nor close the parent's pooled driver connections."""
    proc = subprocess.run([sys.executable, str(WORKER), fork_url], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["fork"] == "ok" and out["pool"] == "ok"
    assert out["exiting_child"] == 0 and out["parent_after_child"] == 4_000
    assert out["fallbacks"] == []  # the parent's own driver connections still answer
    assert out["pooled"] == sorted(f"pool-{k}-{i}" for k in range(4) for i in range(50))
