"""The SQLAlchemy store: SQLite (embedded, the default) and PostgreSQL (for teams).

This module holds the store itself: opening it (schema creation and versioning), its
connections, and every read. History, best models, tickers and the leaderboard read the
derived tables or an index, never a scan of all records. Reads answer with rows or Arrow
tables; the Ledger shapes DataFrames. The SQL of filters and grouped leaderboards lives in
:mod:`.queries`, writes in :mod:`.writes`, engine set-up in :mod:`.engine`, the columnar
readers in :mod:`.columnar` (SQLite) and :mod:`.columnar_pg` (PostgreSQL).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from ..errors import ReadOnlyLedgerError, StoreConnectionError, ValidationError
from ..location import describe_store, describe_url_text, hide_passwords_in
from ..records.record import CORE_METRICS
from ..records.timestamps import format_ts
from . import columnar_pg
from . import schema as T
from .access import sqlite_file
from .base import Grouping, HistoryQuery, HistoryRows, LabelRow, PairRow, StatRow, Store, TailQuery
from .columnar import ColumnarReader
from .engine import BUSY_TIMEOUT_S, create_file, immediate_transaction, make_engine
from .migrations import ensure_schema, refuse_foreign_sqlite
from .queries import grouped_stats, label_rows, name_clauses, source
from .readonly import ChangedDuringRead, ReadOnlyFile, retried
from .reads import read_best, read_directions
from .writes import SQLWriteTx, Statements
from .writes_pg import PgStatements, PgWriteTx

log = logging.getLogger("perfledger")

#: PostgreSQL's deadlock and serialisation-failure codes: the transaction may be run again.
_CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})
_INSUFFICIENT_PRIVILEGE = "42501"
#: History's metric columns are float64 even when every value read is NULL.
_METRIC_TYPES = {m: pa.float64() for m in CORE_METRICS}
#: PostgreSQL type OIDs → the Arrow types the ADBC driver reads them as: the row path gives
#: the same schema (an empty answer included, where there is no value to infer a type from).
_PG_ARROW_TYPES = {16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 25: pa.string(),
                   700: pa.float32(), 701: pa.float64(), 1043: pa.string()}


def _first_line(exc: BaseException) -> str:
    """An error's first line, any URL or DSN in it with its password hidden."""
    lines = str(exc).strip().splitlines()
    return hide_passwords_in(lines[0]) if lines else type(exc).__name__


class SQLStore(Store):
    """A ledger in a SQL database reached through SQLAlchemy."""

    def __init__(self, url: sa.URL, *, read_only: bool = False):
        self.url = url
        self.dialect = url.get_backend_name()
        path = sqlite_file(url)
        if path is not None:
            refuse_foreign_sqlite(path, describe_store(url))
        #: Set when this process may only read the SQLite file: writes raise.
        self.read_only_file = ReadOnlyFile(str(path), BUSY_TIMEOUT_S) if read_only and path else None
        if path is not None and self.read_only_file is None:
            create_file(path)
        try:
            self.engine = make_engine(url, self.read_only_file)
        except (sa.exc.NoSuchModuleError, ImportError) as exc:  # foo://, mysql:// without its driver
            raise ValidationError(
                f"store {describe_url_text(url)!r}: no database driver for {url.drivername!r} "
                f"({_first_line(exc)}); use sqlite:///path or postgresql://user@host/db",
                [(None, "store", "no driver")],
            ) from None
        self._statements = PgStatements() if self.dialect == "postgresql" else Statements(self.dialect)
        self._writer = PgWriteTx if self.dialect == "postgresql" else SQLWriteTx
        self._columnar: ColumnarReader | columnar_pg.PgColumnarReader | None = None
        #: SQLite: the one connection this store writes through, kept out of the pool (see
        #: :meth:`writing`), and the lock that queues this process's writers for it.
        self._write_conn: sa.Connection | None = None
        self._write_lock = threading.Lock()
        if self.dialect == "sqlite":
            self._columnar = ColumnarReader(url.database, self.read_only_file)
        elif self.dialect == "postgresql" and columnar_pg.available():
            self._columnar = columnar_pg.PgColumnarReader(self.engine)
        try:
            self._init_schema()
        except sa.exc.DatabaseError as exc:  # unreachable, or not a database (a corrupt file)
            self.engine.dispose()
            reason = _first_line(getattr(exc, "orig", None) or exc)
            raise StoreConnectionError(f"cannot open {describe_store(url)}: {reason}") from None

    # ------------------------------------------------------------------ schema

    def _init_schema(self) -> None:
        ensure_schema(self.engine, describe_store(self.url), read_only=self.read_only_file is not None)

    # ------------------------------------------------------------------ connections

    @contextmanager
    def writing(self) -> Iterator[SQLWriteTx]:
        """A write transaction; on PostgreSQL a :class:`~.writes_pg.PgWriteTx` (a single
        record in one round trip)."""
        if self.read_only_file is not None:
            raise ReadOnlyLedgerError(
                f"{describe_store(self.url)} is read-only for this user; nothing was changed"
            )
        if self.dialect == "sqlite":
            # One connection, held between writes: checking one out of SQLAlchemy's pool and
            # back (a Connection object, the checkout and reset-on-return bookkeeping) was 5%
            # of a single log()'s instructions (callgrind). This process's writers
            # queue on the lock (as they would on SQLite's write lock, without its polling).
            with self._write_lock:
                if self._write_conn is None or self._write_conn.closed:
                    self._write_conn = self.engine.connect()
                tx = SQLWriteTx(self._write_conn, self._statements)
                with immediate_transaction(self._write_conn, tx):
                    yield tx
            return
        try:
            with self.engine.connect() as conn:
                writer = conn.execution_options(pl_write=True)
                trans = writer.begin()
                pg_tx = self._writer(writer, self._statements)  # type: ignore[arg-type]
                try:
                    yield pg_tx
                    trans.commit()
                except BaseException:
                    pg_tx.aborted()
                    if trans.is_active:
                        trans.rollback()
                    raise
                pg_tx.committed()
        except sa.exc.DBAPIError as exc:
            # A PostgreSQL role granted SELECT only (a dashboard's): the one-line error a
            # read-only ledger directory gives, not a stack of SQL.
            if getattr(exc.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
                raise
            raise ReadOnlyLedgerError(
                f"{describe_store(self.url)} is read-only for role {self.url.username or '(default)'!r} "
                f"({_first_line(exc.orig)}); nothing was changed"
            ) from None

    @contextmanager
    def snapshot(self) -> Iterator[SQLWriteTx]:
        # SQLite (WAL): a deferred transaction reads one snapshot from its first read to its
        # end, without the write lock. PostgreSQL: REPEATABLE READ, read only.
        options: dict[str, Any] = {}
        if self.dialect == "postgresql":
            options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        with (
            self.engine.connect() as conn,
            conn.execution_options(**options).begin(),
            self._checked(conn),
        ):
            yield SQLWriteTx(conn, self._statements)

    def identity(self) -> tuple[Any, ...]:
        if self.dialect == "sqlite":
            st = os.stat(self.url.database or "")
            return ("sqlite", st.st_dev, st.st_ino)
        with self.reading() as conn:
            row = conn.execute(sa.text(
                "SELECT current_database(), CAST(pg_postmaster_start_time() AS TEXT), inet_server_port()"
            )).one()
        return (self.dialect, *row)

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn, conn.begin(), self._checked(conn):
            yield conn

    @contextmanager
    def _checked(self, conn: sa.Connection) -> Iterator[None]:
        """On a read-only file opened immutable: raise ChangedDuringRead (the read is run
        again) when the file changed during the transaction, also when the read failed."""
        if self.read_only_file is None:
            yield
            return
        raw = conn.connection.dbapi_connection
        try:
            yield
        except Exception:
            self.read_only_file.check_connection(raw)
            raise
        self.read_only_file.check_connection(raw)

    def is_conflict(self, exc: BaseException) -> bool:
        code = getattr(getattr(exc, "orig", None), "sqlstate", None)
        return isinstance(exc, sa.exc.DBAPIError) and code in _CONFLICT_SQLSTATES

    def dispose(self) -> None:
        with self._write_lock:
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None
        self.engine.dispose()
        if self._columnar is not None:
            self._columnar.close()

    def after_fork(self) -> None:
        # The parent's write connection (and lock, which another thread may have held at the
        # fork) are forgotten, never closed here: see :mod:`.shared_locks`.
        self._write_conn, self._write_lock = None, threading.Lock()
        self.engine.dispose(close=False)
        if self._columnar is not None:
            self._columnar.after_fork()

    # ------------------------------------------------------------------ reads

    @retried
    def directions(self) -> dict[str, bool]:
        with self.reading() as conn:
            return read_directions(conn)

    @retried
    def get_meta(self, key: str) -> str | None:
        with self.reading() as conn:
            return conn.execute(sa.select(T.meta.c.value).where(T.meta.c.key == key)).scalar()

    @retried
    def last_id(self) -> int:
        with self.reading() as conn:
            return int(conn.execute(sa.select(sa.func.max(T.records.c.id))).scalar() or 0)

    @retried
    def tickers(self) -> list[str]:
        with self.reading() as conn:
            rows = conn.execute(sa.select(T.pairs.c.ticker).distinct().order_by(T.pairs.c.ticker))
            return [r[0] for r in rows]

    @retried
    def models(self, ticker: str | None = None) -> list[str]:
        stmt = sa.select(T.pairs.c.model_name).distinct().order_by(T.pairs.c.model_name)
        if ticker is not None:
            stmt = stmt.where(T.pairs.c.ticker == ticker)
        with self.reading() as conn:
            return [r[0] for r in conn.execute(stmt)]

    @retried
    def best(self, ticker: str | None = None) -> dict[str, Any]:
        with self.reading() as conn:
            return read_best(conn, ticker)

    @retried
    def stats(self) -> dict[str, Any]:
        with self.reading() as conn:
            row = conn.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(T.pairs.c.n), 0),
                    sa.func.count(sa.distinct(T.pairs.c.ticker)),
                    sa.func.count(sa.distinct(T.pairs.c.model_name)),
                    sa.func.max(T.pairs.c.last_ts),
                )
            ).one()
            max_id = conn.execute(sa.select(sa.func.max(T.records.c.id))).scalar()
            gen = conn.execute(
                sa.select(T.meta.c.value).where(T.meta.c.key == "generation")
            ).scalar()
        return {
            "records": int(row[0]),
            "tickers": int(row[1]),
            "models": int(row[2]),
            "last_timestamp": format_ts(row[3]) if row[3] is not None else None,
            "state": f"{gen or 0}:{row[0]}:{max_id or 0}",
        }

    @retried
    def history(self, query: HistoryQuery) -> HistoryRows:
        with self.reading() as conn:
            src = source(conn, query)
            # Record ids are only needed to line custom metrics up with their rows.
            has_extras = conn.execute(sa.text("SELECT 1 FROM pl_extra LIMIT 1")).first() is not None
        limit = f" LIMIT {int(query.limit)}" if query.limit else ""
        order = "ORDER BY r.ts DESC, r.id DESC" if query.limit else "ORDER BY r.ts, r.id"
        # As JSON text on every engine (PostgreSQL keeps them as JSONB; its driver would
        # otherwise hand back dicts).
        meta_cols = (
            ", CAST(r.params AS TEXT) AS params, CAST(r.tags AS TEXT) AS tags" if query.include_meta else ""
        )
        # One ticker asked for: every row holds it, so it is not fetched row by row.
        ticker_col = "" if len(query.tickers) == 1 else "r.ticker, "
        id_col = "r.id, " if has_extras else ""
        sql = (
            f"SELECT {id_col}r.ts, {ticker_col}r.model_name, "
            f"{', '.join('r.' + m for m in CORE_METRICS)}, r.notes{meta_cols} "
            f"FROM {src.from_} WHERE {src.where} {order}{limit}"
        )
        records = self._table(sql, src.params, _METRIC_TYPES)
        extras = None
        if records.num_rows and has_extras:
            if query.limit:
                # Only the custom metrics of the rows kept: the limit runs in the database.
                extra_sql = (f"SELECT e.record_id, e.name, e.value FROM pl_extra e WHERE e.record_id IN "
                             f"(SELECT r.id FROM {src.from_} WHERE {src.where} {order}{limit})")
            else:
                extra_sql = (f"SELECT e.record_id, e.name, e.value FROM {src.from_} "
                             f"JOIN pl_extra e ON e.record_id = r.id WHERE {src.where}")
            extras = self._table(
                extra_sql,
                src.params,
                {"value": pa.float64()},
            )
        return HistoryRows(records, extras)

    @retried
    def count(self, query: HistoryQuery) -> int:
        with self.reading() as conn:
            src = source(conn, query)
            if src.empty:
                return 0
            sql = f"SELECT COUNT(*) FROM {src.from_} WHERE {src.where}"
            return int(conn.execute(sa.text(sql), src.params).scalar() or 0)

    def _table(
        self, sql: str, params: dict[str, Any], types: dict[str, pa.DataType] | None = None
    ) -> pa.Table:
        """Run a read query into an Arrow table: columnar through ADBC on SQLite and
        PostgreSQL (no Python object per value); elsewhere, or if ADBC is unavailable, through
        SQLAlchemy. Columns named in ``types`` have that type whatever values (or only NULLs)
        they hold."""
        if self._columnar is not None:
            try:
                return self._columnar.read(sql, params, types)
            except ChangedDuringRead:
                raise
            except ImportError as exc:  # the driver is installed but does not load
                log.debug("columnar reads unavailable (%s); using the row path", exc)
                self._columnar = None
            except Exception as exc:  # any ADBC problem: the portable path still answers
                log.debug("columnar read unavailable (%s); using the row path", exc)
        with self.reading() as conn:
            result = conn.execute(sa.text(sql), params)
            names = list(result.keys())
            oids = [getattr(d, "type_code", None) for d in result.cursor.description or ()]
            rows = result.fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        if self.dialect == "postgresql":
            types = {**{n: _PG_ARROW_TYPES[o] for n, o in zip(names, oids, strict=False)
                        if o in _PG_ARROW_TYPES}, **(types or {})}
        types = types or {}
        return pa.table({n: pa.array(list(c), types.get(n)) for n, c in zip(names, columns, strict=True)})

    @retried
    def leaderboard_stats(
        self, query: HistoryQuery, by: Grouping = None
    ) -> tuple[list[StatRow], list[PairRow]]:
        summarised = (by is None and query.since_us is None and query.until_us is None
                      and not (query.params or query.tags or query.models or query.at_least
                               or query.at_most) and len(query.tickers) <= 1)
        with self.reading() as conn:
            if not summarised:
                src = source(conn, query)
                if src.empty:
                    return [], []
                has_extras = conn.execute(sa.text("SELECT 1 FROM pl_extra LIMIT 1")).first() is not None
                one = query.tickers[0] if len(query.tickers) == 1 else None
                return grouped_stats(conn, src, by, ticker=one, read=self._table, has_extras=has_extras)
            ticker = query.tickers[0] if query.tickers else None
            params = {"ticker": ticker}
            where = " WHERE ticker = :ticker" if ticker is not None else ""
            long = conn.execute(sa.text(
                "SELECT ticker, model_name, metric, n, mean, m2, min, max, last_value "
                f"FROM pl_summary{where}"), params).fetchall()
            pairs = conn.execute(sa.text(f"SELECT ticker, model_name, n FROM pl_pairs{where}"),
                                 params).fetchall()
        return list(long), list(pairs)

    def labels(self, ticker: str | None = None) -> list[LabelRow]:
        with self.reading() as conn:
            return label_rows(conn, ticker)

    def metric_tails(self, query: TailQuery) -> pa.Table:
        """Each pair's newest values of one metric, read off the (model_name, ticker, ts, id)
        index newest first and stopped after ``keep``: on SQLite a correlated ``IN`` subquery
        with ``LIMIT`` per pair, on PostgreSQL the same read as a ``LATERAL`` join. Pairs come
        from ``pl_summary`` (already counted per metric). A ``ROW_NUMBER()`` window would number
        every row of every pair before keeping a few: measured 3.5-7 s on SQLite at a million
        records, against about 0.4 s this way."""
        params: dict[str, Any] = {"metric": query.metric, "min_count": int(query.min_count)}
        outer = ["s.metric = :metric", "s.n >= :min_count",
                 *name_clauses("s", query.tickers, query.models, params)]
        inner = ["q.model_name = s.model_name", "q.ticker = s.ticker"]
        if query.since_us is not None:
            params["since"] = query.since_us
            inner.append("q.ts >= :since")
        if query.until_us is not None:
            params["until"] = query.until_us
            inner.append("q.ts <= :until")
        if query.custom:
            source = "pl_records q JOIN pl_extra qe ON qe.record_id = q.id AND qe.name = :metric"
            value = "qe.value"
        elif query.metric in CORE_METRICS:
            source, value = "pl_records q", f"q.{query.metric}"
            inner.append(f"q.{query.metric} IS NOT NULL")
        else:
            raise ValueError(f"{query.metric!r} is not a core metric; set custom=True")
        limit = ""
        if query.keep is not None:
            params["keep"] = int(query.keep)
            limit = " LIMIT :keep"
        newest = f"WHERE {' AND '.join(inner)} ORDER BY q.ts DESC, q.id DESC{limit}"
        where = " AND ".join(outer)
        if self.dialect == "postgresql":
            sql = (
                "SELECT s.ticker, s.model_name, t.ts, t.id, t.value FROM pl_summary s CROSS JOIN "
                f"LATERAL (SELECT q.ts, q.id, {value} AS value FROM {source} {newest}) t WHERE {where}"
            )
        else:
            outer_value, extra_join = (
                ("e.value", " JOIN pl_extra e ON e.record_id = r.id AND e.name = :metric")
                if query.custom else (f"r.{query.metric}", "")
            )
            sql = (
                f"SELECT s.ticker, s.model_name, r.ts, r.id, {outer_value} AS value FROM pl_summary s "
                f"JOIN pl_records r ON r.id IN (SELECT q.id FROM {source} {newest}){extra_join} "
                f"WHERE {where}"
            )
        return self._table(sql, params)
