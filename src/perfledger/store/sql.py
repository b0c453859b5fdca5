"""The SQLAlchemy store: SQLite (embedded, the default) and PostgreSQL (for teams).

This module holds the store itself: opening it (schema creation and versioning), its
connections, and every read. History, best models, tickers and the leaderboard read the
derived tables or an index, never a scan of all records. Reads answer with rows or Arrow
tables; the Ledger shapes DataFrames. The SQL of filters and grouped leaderboards lives in
:mod:`.queries`, writes in :mod:`.writes`, engine set-up in :mod:`.engine`, the columnar
SQLite reader in :mod:`.columnar`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from ..errors import StoreConnectionError
from ..location import describe_store
from ..record import CORE_METRICS
from ..timestamps import format_ts
from . import schema as T
from .base import Grouping, HistoryQuery, HistoryRows, LabelRow, PairRow, StatRow, Store
from .columnar import ColumnarReader
from .engine import make_engine
from .migrations import ensure_schema
from .queries import grouped_stats, label_rows, source
from .reads import read_best, read_directions
from .writes import SQLWriteTx, Statements

log = logging.getLogger("perfledger")

#: PostgreSQL's deadlock and serialisation-failure codes: the transaction may be run again.
_CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})


class SQLStore(Store):
    """A ledger in a SQL database reached through SQLAlchemy."""

    def __init__(self, url: sa.URL):
        self.url = url
        self.dialect = url.get_backend_name()
        self.engine = make_engine(url)
        self._statements = Statements(self.dialect)
        self._columnar = ColumnarReader(url.database) if self.dialect == "sqlite" else None
        try:
            self._init_schema()
        except sa.exc.OperationalError as exc:
            self.engine.dispose()
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise StoreConnectionError(f"cannot open {describe_store(url)}: {reason}") from None

    # ------------------------------------------------------------------ schema

    def _init_schema(self) -> None:
        ensure_schema(self.engine, describe_store(self.url))

    # ------------------------------------------------------------------ connections

    @contextmanager
    def writing(self) -> Iterator[SQLWriteTx]:
        with self.engine.connect() as conn, conn.execution_options(pl_write=True).begin():
            yield SQLWriteTx(conn, self._statements)

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def is_conflict(self, exc: BaseException) -> bool:
        code = getattr(getattr(exc, "orig", None), "sqlstate", None)
        return isinstance(exc, sa.exc.DBAPIError) and code in _CONFLICT_SQLSTATES

    def dispose(self) -> None:
        self.engine.dispose()
        if self._columnar is not None:
            self._columnar.close()

    def after_fork(self) -> None:
        self.engine.dispose(close=False)
        if self._columnar is not None:
            self._columnar.after_fork()

    # ------------------------------------------------------------------ reads

    def directions(self) -> dict[str, bool]:
        with self.reading() as conn:
            return read_directions(conn)

    def tickers(self) -> list[str]:
        with self.reading() as conn:
            rows = conn.execute(sa.select(T.pairs.c.ticker).distinct().order_by(T.pairs.c.ticker))
            return [r[0] for r in rows]

    def models(self, ticker: str | None = None) -> list[str]:
        stmt = sa.select(T.pairs.c.model_name).distinct().order_by(T.pairs.c.model_name)
        if ticker is not None:
            stmt = stmt.where(T.pairs.c.ticker == ticker)
        with self.reading() as conn:
            return [r[0] for r in conn.execute(stmt)]

    def best(self, ticker: str | None = None) -> dict[str, Any]:
        with self.reading() as conn:
            return read_best(conn, ticker)

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
        records = self._table(sql, src.params)
        extras = None
        if records.num_rows and has_extras:
            extras = self._table(
                f"SELECT e.record_id, e.name, e.value FROM {src.from_} "
                f"JOIN pl_extra e ON e.record_id = r.id WHERE {src.where}",
                src.params,
            )
        return HistoryRows(records, extras)

    def _table(self, sql: str, params: dict[str, Any]) -> pa.Table:
        """Run a read query into an Arrow table: columnar through ADBC on SQLite (no Python
        object per value); elsewhere, or if ADBC is unavailable, through SQLAlchemy."""
        if self._columnar is not None:
            try:
                return self._columnar.read(sql, params)
            except Exception as exc:  # any ADBC problem: the portable path still answers
                log.debug("columnar read unavailable (%s); using the row path", exc)
        with self.reading() as conn:
            result = conn.execute(sa.text(sql), params)
            names = list(result.keys())
            rows = result.fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        return pa.table({n: pa.array(list(c)) for n, c in zip(names, columns, strict=True)})

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
