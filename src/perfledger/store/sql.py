"""The SQLAlchemy store: SQLite (embedded, the default) and PostgreSQL (for teams).

This module holds the store itself: schema creation and versioning, the SQL of the upserts
(shared by both engines but for ``min``/``LEAST``), and every read. History, best models,
tickers and the leaderboard read the derived tables or the ``(ticker, ts)`` index, never a
scan of all records. Writes live in :mod:`.writes`, engine set-up in :mod:`.engine`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import SchemaVersionError, StoreConnectionError, ValidationError
from ..records import SEED_DIRECTIONS, SEED_METRICS, format_ts
from . import tables as T
from .base import HistoryQuery, Store
from .engine import describe, make_engine, sqlite_url_for
from .writes import SQLWriteTx

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("perfledger")

__all__ = ["SQLStore", "describe", "sqlite_url_for"]


class SQLStore(Store):
    """A ledger in a SQL database reached through SQLAlchemy."""

    def __init__(self, url: sa.URL):
        self.url = url
        self.dialect = url.get_backend_name()
        self.shared = self.dialect != "sqlite"
        self.engine = make_engine(url)
        self._ph = "?" if self.dialect == "sqlite" else "%s"
        self._least = "min" if self.dialect == "sqlite" else "LEAST"
        self._greatest = "max" if self.dialect == "sqlite" else "GREATEST"
        self._sql = self._build_sql()
        # Parsed once: building a text() clause per call costs more than the statement itself.
        self._text = {k: sa.text(v) for k, v in self._sql.items() if not k.startswith("insert_")}
        self._adbc_pool: list[Any] = []  # columnar read connections (SQLite)
        # Close them when the store goes away or at exit, while the driver can still do it.
        weakref.finalize(self, _close_all, self._adbc_pool, os.getpid())
        self._adbc_lock = threading.Lock()
        self._adbc_pid = os.getpid()
        try:
            self._init_schema()
        except sa.exc.OperationalError as exc:
            self.engine.dispose()
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise StoreConnectionError(f"cannot open {describe(url)}: {reason}") from None

    # ------------------------------------------------------------------ schema

    def _init_schema(self) -> None:
        with self.engine.connect() as conn, conn.execution_options(pl_write=True).begin():
            if self.dialect == "postgresql":
                # Concurrent first users would otherwise race on CREATE TABLE.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7426001)")
            insp = sa.inspect(conn)
            if insp.has_table("pl_meta"):
                row = conn.execute(
                    sa.select(T.meta.c.value).where(T.meta.c.key == "schema_version")
                ).scalar()
                version = int(row) if row is not None else 0
                if version > T.SCHEMA_VERSION:
                    raise SchemaVersionError(
                        f"{describe(self.url)} was written by a newer perfledger (schema "
                        f"v{version}; this one understands up to v{T.SCHEMA_VERSION}). "
                        "Upgrade perfledger; the store was not touched."
                    )
                if version == T.SCHEMA_VERSION:
                    return
            T.metadata.create_all(conn)
            self._upsert_meta(conn, "schema_version", str(T.SCHEMA_VERSION))
            log.info("created perfledger schema v%d in %s", T.SCHEMA_VERSION, describe(self.url))

    def _upsert_meta(self, conn: sa.Connection, key: str, value: str) -> None:
        conn.execute(self._text["meta"], {"key": key, "value": value})

    def _build_sql(self) -> dict[str, str]:
        least, greatest = self._least, self._greatest
        newer = (
            "(excluded.last_ts > pl_summary.last_ts OR (excluded.last_ts = pl_summary.last_ts "
            "AND excluded.last_id > pl_summary.last_id))"
        )
        sql = {
            "meta": (
                "INSERT INTO pl_meta (key, value) VALUES (:key, :value) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            "summary": (
                "INSERT INTO pl_summary (ticker, model_name, metric, n, mean, m2, min, max, "
                "last_value, last_ts, last_id) VALUES (:ticker, :model_name, :metric, :n, :mean, "
                ":m2, :min, :max, :last_value, :last_ts, :last_id) "
                "ON CONFLICT (ticker, model_name, metric) DO UPDATE SET "
                "n = pl_summary.n + excluded.n, "
                "mean = pl_summary.mean + (excluded.mean - pl_summary.mean) * excluded.n "
                "/ (pl_summary.n + excluded.n), "
                "m2 = pl_summary.m2 + excluded.m2 + (excluded.mean - pl_summary.mean) "
                "* (excluded.mean - pl_summary.mean) * pl_summary.n * excluded.n "
                "/ (pl_summary.n + excluded.n), "
                f"min = {least}(pl_summary.min, excluded.min), "
                f"max = {greatest}(pl_summary.max, excluded.max), "
                f"last_value = CASE WHEN {newer} THEN excluded.last_value "
                "ELSE pl_summary.last_value END, "
                f"last_id = CASE WHEN {newer} THEN excluded.last_id ELSE pl_summary.last_id END, "
                f"last_ts = {greatest}(pl_summary.last_ts, excluded.last_ts)"
            ),
            "pairs": (
                "INSERT INTO pl_pairs (ticker, model_name, n, first_ts, last_ts) "
                "VALUES (:ticker, :model_name, :n, :first_ts, :last_ts) "
                "ON CONFLICT (ticker, model_name) DO UPDATE SET n = pl_pairs.n + excluded.n, "
                f"first_ts = {least}(pl_pairs.first_ts, excluded.first_ts), "
                f"last_ts = {greatest}(pl_pairs.last_ts, excluded.last_ts)"
            ),
        }
        # A candidate replaces the best when strictly better, or equal and earlier (ts, id):
        # exactly what a recomputation from history, in chronological order, would pick.
        for direction, cmp in (("hi", ">"), ("lo", "<")):
            sql[f"best_{direction}"] = (
                "INSERT INTO pl_best (ticker, metric, model_name, value, ts, record_id) "
                "VALUES (:ticker, :metric, :model_name, :value, :ts, :record_id) "
                "ON CONFLICT (ticker, metric) DO UPDATE SET model_name = excluded.model_name, "
                "value = excluded.value, ts = excluded.ts, record_id = excluded.record_id "
                f"WHERE excluded.value {cmp} pl_best.value OR (excluded.value = pl_best.value "
                "AND (excluded.ts < pl_best.ts OR (excluded.ts = pl_best.ts "
                "AND excluded.record_id < pl_best.record_id)))"
            )
        ph = self._ph
        cols = ["id", "ticker", "model_name", "ts", *SEED_METRICS, "notes", "params", "tags"]
        sql["insert_records"] = (
            f"INSERT INTO pl_records ({', '.join(cols)}) VALUES ({', '.join([ph] * len(cols))})"
        )
        sql["directions"] = "SELECT name, higher_is_better FROM pl_metric_defs"
        sql["get_meta"] = "SELECT value FROM pl_meta WHERE key = :key"
        sql["max_id"] = "SELECT COALESCE(MAX(id), 0) FROM pl_records"
        sql["ticker_known"] = "SELECT 1 FROM pl_pairs WHERE ticker = :ticker LIMIT 1"
        sql["insert_extra"] = f"INSERT INTO pl_extra (record_id, name, value) VALUES ({ph}, {ph}, {ph})"
        return sql

    # ------------------------------------------------------------------ connections

    @contextmanager
    def writing(self) -> Iterator[SQLWriteTx]:
        with self.engine.connect() as conn, conn.execution_options(pl_write=True).begin():
            yield SQLWriteTx(self, conn)

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()
        with self._adbc_lock:
            if self._adbc_pid == os.getpid():
                _close_all(self._adbc_pool, self._adbc_pid)
            self._adbc_pool.clear()

    def after_fork(self) -> None:
        """A forked child must not share its parent's pooled connections."""
        self.engine.dispose(close=False)
        with self._adbc_lock:
            self._adbc_pool.clear()
            self._adbc_pid = os.getpid()

    # ------------------------------------------------------------------ reads

    def directions(self, conn: sa.Connection | None = None) -> dict[str, bool]:
        def q(c: sa.Connection) -> dict[str, bool]:
            rows = c.execute(sa.select(T.metric_defs.c.name, T.metric_defs.c.higher_is_better))
            return {**SEED_DIRECTIONS, **{n: bool(h) for n, h in rows}}

        if conn is not None:
            return q(conn)
        with self.reading() as c:
            return q(c)

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

    def best(
        self,
        ticker: str | None = None,
        conn: sa.Connection | None = None,
        directions: dict[str, bool] | None = None,
    ) -> dict[str, Any]:
        if conn is None:
            with self.reading() as c:
                return self.best(ticker, c)
        directions = directions if directions is not None else self.directions(conn)
        metrics = [*SEED_METRICS, *sorted(m for m in directions if m not in SEED_DIRECTIONS)]
        if ticker is not None:
            exists = conn.execute(
                sa.select(T.pairs.c.ticker).where(T.pairs.c.ticker == ticker).limit(1)
            ).first()
            if exists is None:
                return {}
            tickers = [ticker]
            rows = conn.execute(sa.select(T.best).where(T.best.c.ticker == ticker))
        else:
            tickers = [r[0] for r in conn.execute(
                sa.select(T.pairs.c.ticker).distinct().order_by(T.pairs.c.ticker))]
            rows = conn.execute(sa.select(T.best))
        out: dict[str, dict[str, Any]] = {
            t: {f"best_{m}": {"model": None, "value": None, "timestamp": None} for m in metrics}
            for t in tickers
        }
        for r in rows:
            entry = out.get(r.ticker)
            if entry is not None and r.metric in directions:
                entry[f"best_{r.metric}"] = {
                    "model": r.model_name, "value": r.value, "timestamp": format_ts(r.ts)
                }
        return out[ticker] if ticker is not None else out

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
                if metric in SEED_METRICS:
                    clauses.append(f"r.{metric} {op} :{tag}{i}")
                else:
                    params[f"{tag}n{i}"] = metric
                    clauses.append(
                        f"EXISTS (SELECT 1 FROM pl_extra e WHERE e.record_id = r.id "
                        f"AND e.name = :{tag}n{i} AND e.value {op} :{tag}{i})"
                    )
        return " AND ".join(clauses) if clauses else "1=1"

    def history(self, query: HistoryQuery) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        params: dict[str, Any] = {}
        where = self._where(query, params)
        limit = f" LIMIT {int(query.limit)}" if query.limit else ""
        order = "ORDER BY r.ts DESC, r.id DESC" if query.limit else "ORDER BY r.ts, r.id"
        meta_cols = ", r.params, r.tags" if query.include_meta else ""
        # One ticker asked for: every row holds it, so it is not fetched row by row.
        one_ticker = query.tickers[0] if len(query.tickers) == 1 else None
        ticker_col = "" if one_ticker is not None else "r.ticker, "
        # Record ids are only needed to line custom metrics up with their rows.
        has_extras = self._has_extras()
        id_col = "r.id, " if has_extras else ""
        sql = (
            f"SELECT {id_col}r.ts, {ticker_col}r.model_name, "
            f"{', '.join('r.' + m for m in SEED_METRICS)}, r.notes{meta_cols} "
            f"FROM pl_records r WHERE {where} {order}{limit}"
        )
        rows = self._frame(sql, params)
        extras = None
        if len(rows) and has_extras:
            extras = self._frame(
                "SELECT e.record_id, e.name, e.value FROM pl_extra e JOIN pl_records r "
                f"ON r.id = e.record_id WHERE {where}",
                params,
            )
        if query.limit:
            rows = rows.iloc[::-1].reset_index(drop=True)
        ts = rows["ts"]
        n = len(rows)
        data: dict[str, Any] = {
            "timestamp": ts if ts.dtype.kind == "M"
            else pd.to_datetime(ts.to_numpy(dtype=np.int64), unit="us", utc=True),
            "ticker": rows["ticker"] if one_ticker is None
            else pd.Series(one_ticker, index=pd.RangeIndex(n), dtype="str"),
            "model_name": rows["model_name"],
        }
        for m in SEED_METRICS:
            col = rows[m]
            data[m] = col if col.dtype == np.float64 else col.to_numpy(dtype=float, na_value=np.nan)
        data["notes"] = rows["notes"]
        frame = pd.DataFrame({k: v.array if isinstance(v, pd.Series) else v for k, v in data.items()})
        if query.include_meta:
            frame["params"] = [json.loads(v) if isinstance(v, str) and v else {} for v in rows["params"]]
            frame["tags"] = [json.loads(v) if isinstance(v, str) and v else {} for v in rows["tags"]]
        if extras is not None and len(extras):
            wide = extras.pivot(index="record_id", columns="name", values="value")
            wide = wide.reindex(rows["id"].to_numpy(dtype=np.int64))
            for name in sorted(wide.columns):
                frame[name] = wide[name].to_numpy(dtype=float, na_value=np.nan)
        return frame

    def _has_extras(self) -> bool:
        """Whether any custom metric was ever stored (skips a join when none was)."""
        with self.reading() as conn:
            return conn.execute(sa.text("SELECT 1 FROM pl_extra LIMIT 1")).first() is not None

    def _frame(self, sql: str, params: dict[str, Any]) -> pd.DataFrame:
        """Run a read query into a DataFrame. On SQLite the result comes back columnar
        through ADBC (no Python object per value: 20k rows in a few ms); elsewhere, or if
        ADBC is unavailable, through the SQLAlchemy connection."""
        import pandas as pd

        if self.dialect == "sqlite":
            try:
                return self._adbc_frame(sql, params)
            except Exception as exc:  # any ADBC problem: the portable path still answers
                log.debug("columnar read unavailable (%s); using the row path", exc)
        with self.reading() as conn:
            result = conn.execute(sa.text(sql), params)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def _adbc_frame(self, sql: str, params: dict[str, Any]) -> pd.DataFrame:
        names: list[str] = []

        def positional(match: re.Match[str]) -> str:
            names.append(match.group(1))
            return "?"

        qmark = re.sub(r":(\w+)", positional, sql)
        con = self._adbc_take()
        try:
            cur = con.cursor()
            try:
                # One batch for the whole result: the driver infers each column's type from its
                # first batch, and a metric that starts with NULLs must not be typed as integer.
                cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(2**30)})
                cur.execute(qmark, tuple(params[n] for n in names))
                table = cur.fetch_arrow_table()
                if "ts" in table.column_names:  # UTC microseconds: typed in Arrow, no copy
                    i = table.column_names.index("ts")
                    table = table.set_column(i, "ts", table.column(i).cast(_TS_TYPE()))
                return table.to_pandas()
            finally:
                cur.close()
        finally:
            self._adbc_give(con)

    def _adbc_take(self) -> Any:
        """A columnar read connection from a small pool (one user at a time each)."""
        with self._adbc_lock:
            if self._adbc_pid != os.getpid():  # never reuse a parent's connections
                self._adbc_pool.clear()
                self._adbc_pid = os.getpid()
            if self._adbc_pool:
                return self._adbc_pool.pop()
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        return adbc_sqlite.connect(self.url.database, autocommit=True)

    def _adbc_give(self, con: Any) -> None:
        with self._adbc_lock:
            if len(self._adbc_pool) < 4 and self._adbc_pid == os.getpid():
                self._adbc_pool.append(con)
                return
        with contextlib.suppress(Exception):
            con.close()

    def leaderboard(self, ticker: str | None, metric: str, since_us: int | None) -> pd.DataFrame:
        from ..leaderboard import build_leaderboard

        directions = self.directions()
        if metric not in directions:
            raise ValidationError(
                f"metric={metric!r} has no known direction; known: {sorted(directions)} "
                "(register a custom metric with Ledger.register_metric)",
                [(None, "metric", "unknown")],
            )
        params: dict[str, Any] = {}
        tfilter = ""
        if ticker is not None:
            params["ticker"] = ticker
            tfilter = " AND r.ticker = :ticker"
        with self.reading() as conn:
            if since_us is None:
                sql = (
                    "SELECT s.ticker, s.model_name, s.metric, s.n, s.mean, s.m2, s.min, s.max, "
                    "s.last_value FROM pl_summary s"
                    + (" WHERE s.ticker = :ticker" if ticker is not None else "")
                )
                long = conn.execute(sa.text(sql), params).fetchall()
                psql = "SELECT ticker, model_name, n FROM pl_pairs" + (
                    " WHERE ticker = :ticker" if ticker is not None else ""
                )
                pairs = conn.execute(sa.text(psql), params).fetchall()
            else:
                params["since"] = since_us
                long, pairs = self._windowed_stats(conn, tfilter, params)
        return build_leaderboard(long, pairs, metric, directions)

    def _windowed_stats(
        self, conn: sa.Connection, tfilter: str, params: dict[str, Any]
    ) -> tuple[list[Any], list[Any]]:
        """Leaderboard statistics over a time window, aggregated by the database."""
        parts = [
            f"SELECT r.ticker, r.model_name, '{m}' AS metric, r.{m} AS value, r.ts, r.id "
            f"FROM pl_records r WHERE r.ts >= :since{tfilter} AND r.{m} IS NOT NULL"
            for m in SEED_METRICS
        ]
        parts.append(
            "SELECT r.ticker, r.model_name, e.name AS metric, e.value, r.ts, r.id FROM pl_extra e "
            f"JOIN pl_records r ON r.id = e.record_id WHERE r.ts >= :since{tfilter}"
        )
        v = " UNION ALL ".join(parts)
        sql = (
            f"WITH v AS ({v}), "
            "g AS (SELECT ticker, model_name, metric, COUNT(*) AS n, AVG(value) AS mean, "
            "MIN(value) AS mn, MAX(value) AS mx FROM v GROUP BY ticker, model_name, metric), "
            "d AS (SELECT v.ticker, v.model_name, v.metric, "
            "SUM((v.value - g.mean) * (v.value - g.mean)) AS m2 FROM v JOIN g "
            "ON v.ticker = g.ticker AND v.model_name = g.model_name AND v.metric = g.metric "
            "GROUP BY v.ticker, v.model_name, v.metric), "
            "l AS (SELECT ticker, model_name, metric, value, ROW_NUMBER() OVER (PARTITION BY "
            "ticker, model_name, metric ORDER BY ts DESC, id DESC) AS rn FROM v) "
            "SELECT g.ticker, g.model_name, g.metric, g.n, g.mean, d.m2, g.mn, g.mx, l.value "
            "FROM g JOIN d ON g.ticker = d.ticker AND g.model_name = d.model_name "
            "AND g.metric = d.metric JOIN l ON l.ticker = g.ticker AND "
            "l.model_name = g.model_name AND l.metric = g.metric AND l.rn = 1"
        )
        long = conn.execute(sa.text(sql), params).fetchall()
        pairs = conn.execute(
            sa.text(
                "SELECT r.ticker, r.model_name, COUNT(*) FROM pl_records r "
                f"WHERE r.ts >= :since{tfilter} GROUP BY r.ticker, r.model_name"
            ),
            params,
        ).fetchall()
        return long, pairs


def _close_all(connections: list[Any], owner_pid: int) -> None:
    """Close pooled connections, but only in the process that opened them: a forked child
    closing its parent's SQLite handles could checkpoint under the parent's feet."""
    if os.getpid() != owner_pid:
        connections.clear()
        return
    for con in connections:
        with contextlib.suppress(Exception):
            con.close()
    connections.clear()


def _TS_TYPE() -> Any:
    import pyarrow as pa

    return pa.timestamp("us", tz="UTC")
