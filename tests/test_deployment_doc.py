"""docs/deployment.md's role set-up, run as written (issue 11, item 7).

The ``roles.sql`` block is read out of the document and run by a superuser against a
throw-away database (role names made unique for the run); then the writer role creates the
ledger and logs, and the reader role opens it, reads history, best and leaderboards (the
dashboard's reads) and gets the one-line ReadOnlyLedgerError for a write.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pandas.testing as pdt
import pytest
import sqlalchemy as sa
from conftest import PG_ADMIN_URL, _server_or_skip

from perfledger import Ledger, ReadOnlyLedgerError
from perfledger.dashboard import data

pytestmark = pytest.mark.postgres

DOC = Path(__file__).parent.parent / "docs" / "deployment.md"


def _roles_sql() -> str:
    text = DOC.read_text()
    blocks = re.findall(r"```sql\n(.*?)```", text[text.index("with `roles.sql`"):], flags=re.S)
    assert blocks, "docs/deployment.md lost its roles.sql block"
    return blocks[0]


def test_the_documented_roles_write_and_read_only_read() -> None:
    _server_or_skip()
    tag = uuid.uuid4().hex[:8]
    db, writer, reader = f"pl_doc_{tag}", f"pl_doc_writer_{tag}", f"pl_doc_reader_{tag}"
    sql = (_roles_sql().replace("perfledger_writer", writer).replace("perfledger_reader", reader)
           .replace("DATABASE perfledger ", f"DATABASE {db} "))
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    base = sa.make_url(PG_ADMIN_URL).set(database=db)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{db}"')
    on_db = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with on_db.connect() as conn:
            conn.exec_driver_sql(sql)
        on_db.dispose()
        writer_url = base.set(username=writer).render_as_string(hide_password=False)
        reader_url = base.set(username=reader).render_as_string(hide_password=False)
        with Ledger(writer_url) as led:  # creates the tables: the writer owns them
            led.log_many([{"model_name": f"M{i % 3}", "ticker": "AAPL", "sharpe": i / 10,
                           "params": {"lr": i % 2}, "notes": "é"} for i in range(30)])
            want = led.history(ticker="AAPL", include_meta=True)
        with Ledger(reader_url) as ro:
            pdt.assert_frame_equal(ro.history(ticker="AAPL", include_meta=True), want)
            assert ro.best("AAPL")["best_sharpe"]["value"] == 2.9
            assert set(ro.leaderboard("AAPL")["model_name"]) == {"M0", "M1", "M2"}
            assert len(ro.leaderboard("AAPL", by="param:lr")) == 2
            refused = f"read-only for role '{reader}'.*nothing was changed"
            with pytest.raises(ReadOnlyLedgerError, match=refused) as info:
                ro.log("M9", "AAPL", sharpe=9.0)
            assert "\n" not in str(info.value)
            with pytest.raises(ReadOnlyLedgerError):
                ro.clear()
            assert ro.stats()["records"] == 30
        state = Ledger(reader_url).stats()["state"]
        assert len(data.history(reader_url, state, data.Filters("AAPL"))) == 30  # the dashboard's read
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{writer}"')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{reader}"')
        admin.dispose()


def _partition_sql() -> str:
    text = DOC.read_text()
    blocks = re.findall(r"```sql\n(.*?)```", text[text.index("## Past one server"):], flags=re.S)
    assert blocks and "-- partition.sql" in blocks[0], "docs/deployment.md lost its partition.sql block"
    return blocks[0]


def test_the_documented_monthly_partitioning_keeps_the_ledger_working() -> None:
    """docs/deployment.md's partition.sql, run as written on a ledger whose records span
    several months (and one dated long before): every record is still there with its id,
    logging (single and batched, params and tags) and reading work on the partitioned
    table, a month can be detached, and what was detached leaves history only."""
    from datetime import UTC, datetime

    _server_or_skip()
    tag = uuid.uuid4().hex[:8]
    db = f"pl_part_{tag}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    url = sa.make_url(PG_ADMIN_URL).set(database=db).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{db}"')
    try:
        months = [datetime(2026, m, 15, tzinfo=UTC) for m in (1, 2, 3)] + [datetime(2019, 6, 1, tzinfo=UTC)]
        with Ledger(url) as led:
            led.log_many([{"model_name": f"M{i % 3}", "ticker": "AAPL", "sharpe": i / 10, "timestamp": ts,
                           "params": {"lr": i % 2}, "tags": {"run": "a"}}
                          for i, ts in enumerate(months * 5)])
            before = led.history(include_meta=True)
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.connection.dbapi_connection.execute(_partition_sql())  # as psql runs it: no parameters
            kinds = dict(conn.exec_driver_sql(
                "SELECT relname, relkind FROM pg_class WHERE relname IN "
                "('pl_records', 'pl_records_2026_01', 'pl_records_default')").all())
        assert kinds == {"pl_records": "p", "pl_records_2026_01": "r", "pl_records_default": "r"}
        with Ledger(url) as led:
            pdt.assert_frame_equal(led.history(include_meta=True), before)
            led.log("M9", "AAPL", sharpe=9.0, params={"lr": 1})
            led.log("M9", "AAPL", sharpe=9.5)
            led.log_many([{"model_name": "M8", "ticker": "MSFT", "sharpe": 1.0}] * 3)
            assert len(led.history()) == 25
            assert led.best("AAPL")["best_sharpe"]["value"] == 9.5
            assert len(led.history(ticker="AAPL", params={"lr": 1})) == 11
        with engine.connect() as conn:
            n, distinct, top = conn.exec_driver_sql("SELECT count(*), count(DISTINCT id), max(id) "
                                                    "FROM pl_records").one()
            assert n == distinct == 25 and top == 25  # ids went on from the sequence, unique
            conn.exec_driver_sql("ALTER TABLE pl_records DETACH PARTITION pl_records_2026_01")
        with Ledger(url) as led:
            assert len(led.history()) == 25 - 5
            led.log("M9", "AAPL", sharpe=1.0)
            assert len(led.history()) == 21
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.dispose()
