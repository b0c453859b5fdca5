"""The SQLAlchemy store: SQLite (embedded, the default) and PostgreSQL (for teams).

This module holds the store itself: opening it (schema creation and versioning), its
connections, and every read. History, best models, tickers and the leaderboard read the
derived tables or the ``(ticker, ts)`` index, never a scan of all records. Reads answer with
rows or Arrow tables; the Ledger shapes DataFrames. Writes live in :mod:`.writes`, engine
set-up in :mod:`.engine`, the columnar SQLite reader in :mod:`.columnar`.
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
from .base import HistoryQuery, HistoryRows, PairRow, StatRow, Store, TailQuery
from .columnar import ColumnarReader
from .engine import make_engine
from .migrations import ensure_schema
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

    def _where(self, q: HistoryQuery, params: dict[str, Any]) -> str:
        clauses = []
        for name, values in (("ticker", q.tickers), ("model_name", q.models)):
            if values:
                keys = []
                for i, v in enumerate(values):
                    params[f"{name}{i}"] = v
                    keys.append(f":{name}{i}")
                clauses.append(f"r.{name} IN ({', '.join(keys)})")
        if q.since_us is not None:
            params["since"] = q.since_us
            clauses.append("r.ts >= :since")
        if q.until_us is not None:
            params["until"] = q.until_us
            clauses.append("r.ts <= :until")
        for tag, op, bounds in (("lo", ">=", q.at_least), ("hi", "<=", q.at_most)):
            for i, (metric, value) in enumerate(bounds):
                params[f"{tag}{i}"] = value
                if metric in CORE_METRICS:
                    clauses.append(f"r.{metric} {op} :{tag}{i}")
                else:
                    params[f"{tag}n{i}"] = metric
                    clauses.append(
                        f"EXISTS (SELECT 1 FROM pl_extra e WHERE e.record_id = r.id "
                        f"AND e.name = :{tag}n{i} AND e.value {op} :{tag}{i})"
                    )
        return " AND ".join(clauses) if clauses else "1=1"

    def history(self, query: HistoryQuery) -> HistoryRows:
        params: dict[str, Any] = {}
        where = self._where(query, params)
        limit = f" LIMIT {int(query.limit)}" if query.limit else ""
        order = "ORDER BY r.ts DESC, r.id DESC" if query.limit else "ORDER BY r.ts, r.id"
        # As JSON text on every engine (PostgreSQL keeps them as JSONB; its driver would
        # otherwise hand back dicts).
        meta_cols = (
            ", CAST(r.params AS TEXT) AS params, CAST(r.tags AS TEXT) AS tags" if query.include_meta else ""
        )
        # One ticker asked for: every row holds it, so it is not fetched row by row.
        ticker_col = "" if len(query.tickers) == 1 else "r.ticker, "
        # Record ids are only needed to line custom metrics up with their rows.
        has_extras = self._has_extras()
        id_col = "r.id, " if has_extras else ""
        sql = (
            f"SELECT {id_col}r.ts, {ticker_col}r.model_name, "
            f"{', '.join('r.' + m for m in CORE_METRICS)}, r.notes{meta_cols} "
            f"FROM pl_records r WHERE {where} {order}{limit}"
        )
        records = self._table(sql, params)
        extras = None
        if records.num_rows and has_extras:
            extras = self._table(
                "SELECT e.record_id, e.name, e.value FROM pl_extra e JOIN pl_records r "
                f"ON r.id = e.record_id WHERE {where}",
                params,
            )
        return HistoryRows(records, extras)

    def _has_extras(self) -> bool:
        """Whether any custom metric was ever stored (skips a join when none was)."""
        with self.reading() as conn:
            return conn.execute(sa.text("SELECT 1 FROM pl_extra LIMIT 1")).first() is not None

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

    def metric_tails(self, query: TailQuery) -> pa.Table:
        """Each pair's newest values of one metric, read off the (model_name, ticker, ts, id)
        index newest first and stopped after ``keep``: on SQLite a correlated ``IN`` subquery
        with ``LIMIT`` per pair, on PostgreSQL the same read as a ``LATERAL`` join. Pairs come
        from ``pl_summary`` (already counted per metric). A ``ROW_NUMBER()`` window would number
        every row of every pair before keeping a few: measured 3.5-7 s on SQLite at a million
        records, against about 0.4 s this way."""
        params: dict[str, Any] = {"metric": query.metric, "min_count": int(query.min_count)}
        outer = ["s.metric = :metric", "s.n >= :min_count"]
        for name, values in (("ticker", query.tickers), ("model_name", query.models)):
            if values:
                keys = []
                for i, v in enumerate(values):
                    params[f"{name}{i}"] = v
                    keys.append(f":{name}{i}")
                outer.append(f"s.{name} IN ({', '.join(keys)})")
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

    def leaderboard_stats(self, query: HistoryQuery) -> tuple[list[StatRow], list[PairRow]]:
        params: dict[str, Any] = {}
        filtered = (query.since_us is not None or query.until_us is not None or query.at_least
                    or query.at_most or query.models)
        with self.reading() as conn:
            if not filtered:
                where = ""
                if query.tickers:
                    keys = []
                    for i, t in enumerate(query.tickers):
                        params[f"ticker{i}"] = t
                        keys.append(f":ticker{i}")
                    where = f" WHERE ticker IN ({', '.join(keys)})"
                long = conn.execute(sa.text(
                    "SELECT ticker, model_name, metric, n, mean, m2, min, max, last_value "
                    f"FROM pl_summary{where}"), params).fetchall()
                pairs = conn.execute(sa.text(f"SELECT ticker, model_name, n FROM pl_pairs{where}"),
                                     params).fetchall()
            else:
                long, pairs = self._windowed_stats(conn, self._where(query, params), params)
        return list(long), list(pairs)

    def _windowed_stats(
        self, conn: sa.Connection, where: str, params: dict[str, Any]
    ) -> tuple[list[Any], list[Any]]:
        """Leaderboard statistics over the records matching ``where`` (time window, metric
        bounds, names), aggregated by the database in two grouped passes: counts, means,
        extremes and each metric's latest time; then the squared deviations from those means
        (exact, unlike a sum of squares) and the id of each latest value, read back by id."""
        pairs: list[tuple[Any, ...]] = []
        long = self._two_pass(conn, where, params, custom=False, pairs=pairs)
        if self._has_extras():
            long += self._two_pass(conn, where, params, custom=True)
        return long, pairs

    def _two_pass(
        self, conn: sa.Connection, where: str, params: dict[str, Any], *, custom: bool,
        pairs: list[tuple[Any, ...]] | None = None,
    ) -> list[tuple[Any, ...]]:
        """One row per (ticker, model, metric): ``n, mean, m2, min, max, latest``. Core metrics
        are columns of one grouped scan, which also counts each pair's records into ``pairs``;
        custom ones are rows of ``pl_extra`` grouped by name."""
        if custom:
            src = "pl_extra x JOIN pl_records r ON r.id = x.record_id"
            keys, names = ["r.ticker", "r.model_name", "x.name"], [None]
        else:
            src, keys, names = "pl_records r", ["r.ticker", "r.model_name"], list(CORE_METRICS)
        val = (lambda m: "x.value") if custom else (lambda m: f"r.{m}")
        first, second, pick = ([], [], []) if custom else (["COUNT(*) AS nrec"], [], ["g.nrec"])
        for k, m in enumerate(names):
            v = val(m)
            first += [f"COUNT({v}) AS n{k}", f"AVG({v}) AS a{k}", f"MIN({v}) AS lo{k}", f"MAX({v}) AS hi{k}",
                      f"MAX(CASE WHEN {v} IS NOT NULL THEN r.ts END) AS t{k}"]
            second += [f"SUM(({v} - g.a{k}) * ({v} - g.a{k})) AS m{k}",
                       f"MAX(CASE WHEN {v} IS NOT NULL AND r.ts = g.t{k} THEN r.id END) AS i{k}"]
            latest = (f"(SELECT x2.value FROM pl_extra x2 WHERE x2.record_id = d.i{k} AND x2.name = g.k2)"
                      if custom else f"(SELECT r2.{m} FROM pl_records r2 WHERE r2.id = d.i{k})")
            pick += [f"g.n{k}", f"g.a{k}", f"d.m{k}", f"g.lo{k}", f"g.hi{k}", latest]
        aliases = ["k0", "k1", "k2"][: len(keys)]
        group = ", ".join(keys)
        on = " AND ".join(f"{c} = g.{a}" for c, a in zip(keys, aliases, strict=True))
        don = " AND ".join(f"d.{a} = g.{a}" for a in aliases)
        sel = ", ".join(f"{c} AS {a}" for c, a in zip(keys, aliases, strict=True))
        sql = (
            f"WITH g AS (SELECT {sel}, {', '.join(first)} FROM {src} WHERE {where} "
            f"GROUP BY {group}), "
            f"d AS (SELECT {sel}, {', '.join(second)} FROM {src} JOIN g ON {on} WHERE {where} "
            f"GROUP BY {group}) "
            f"SELECT {', '.join('g.' + a for a in aliases)}, {', '.join(pick)} FROM g JOIN d ON {don}"
        )
        out = []
        for row in conn.execute(sa.text(sql), params):
            ticker, model = row[0], row[1]
            body = row[len(aliases):]
            if not custom:
                if pairs is not None:
                    pairs.append((ticker, model, body[0]))
                body = body[1:]
            for k, m in enumerate(names):
                n, mean, m2, lo, hi, last = body[6 * k : 6 * k + 6]
                if n:
                    out.append((ticker, model, row[2] if custom else m, n, mean, m2, lo, hi, last))
        return out
