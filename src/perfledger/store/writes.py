"""The write transaction: inserting a batch and merging its aggregates atomically.

Every insert runs in one transaction that also merges the batch's aggregates into the
derived tables with conditional upserts (``INSERT .. ON CONFLICT .. DO UPDATE .. WHERE``),
which both engines evaluate atomically against the latest committed row. That is what keeps
``best()`` exact with any number of concurrent writers, on one machine or many. Rows are
upserted in key order so that concurrent PostgreSQL writers take row locks in one order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..records.labels import collect, digest
from ..records.record import CORE_DIRECTIONS, CORE_METRICS
from . import schema as T
from .base import Inserted, WriteTx
from .reads import read_best, read_directions


def _sqlite_indexes(table: sa.Table) -> list[sa.Index]:
    return sorted((ix for ix in table.indexes if ix._ddl_if is None or ix._ddl_if.dialect == "sqlite"),
                  key=lambda ix: ix.name or "")


#: Indexes rebuilt after a bulk load instead of maintained row by row: one sort each.
_DEFERRED_INDEXES = _sqlite_indexes(T.records)
_DEFERRED_LABEL_INDEXES = _sqlite_indexes(T.record_labels)
_BULK_ROWS = 50_000
_IN_CHUNK = 500

if TYPE_CHECKING:
    from ..records.batch import Batch


def _build_sql(dialect: str) -> dict[str, str]:
    least = "min" if dialect == "sqlite" else "LEAST"
    greatest = "max" if dialect == "sqlite" else "GREATEST"
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
    ph = "?" if dialect == "sqlite" else "%s"
    cols = ["id", "ticker", "model_name", "ts", *CORE_METRICS, "notes", "params", "tags"]
    sql["insert_records"] = (
        f"INSERT INTO pl_records ({', '.join(cols)}) VALUES ({', '.join([ph] * len(cols))})"
    )
    sql["directions"] = "SELECT name, higher_is_better FROM pl_metric_defs"
    sql["get_meta"] = "SELECT value FROM pl_meta WHERE key = :key"
    sql["max_id"] = "SELECT COALESCE(MAX(id), 0) FROM pl_records"
    sql["ticker_known"] = "SELECT 1 FROM pl_pairs WHERE ticker = :ticker LIMIT 1"
    sql["insert_extra"] = f"INSERT INTO pl_extra (record_id, name, value) VALUES ({ph}, {ph}, {ph})"
    sql["labels"] = (
        "INSERT INTO pl_labels (h, kind, key, value, n) VALUES (:h, :kind, :key, :value, :n) "
        "ON CONFLICT (h) DO UPDATE SET n = pl_labels.n + excluded.n"
    )
    sql["insert_links"] = f"INSERT INTO pl_record_labels (record_id, label_id) VALUES ({ph}, {ph})"
    return sql


class Statements:
    """The writer's SQL for one dialect, built once per store (parsing a ``text()`` clause
    per call would cost more than running the statement)."""

    def __init__(self, dialect: str):
        self.dialect = dialect
        self.sql = _build_sql(dialect)
        self.text = {k: sa.text(v) for k, v in self.sql.items() if not k.startswith("insert_")}


class SQLWriteTx(WriteTx):
    """A write transaction on a SQLAlchemy connection the store opened with its write lock."""

    def __init__(self, conn: sa.Connection, statements: Statements):
        super().__init__()
        self.conn = conn
        self.dialect = statements.dialect
        self._sql = statements.sql
        self._text = statements.text
        self._directions: dict[str, bool] | None = None
        # On SQLite the hot path talks to the driver directly (sqlite3 binds ``:name``
        # parameters itself); SQLAlchemy's per-statement bookkeeping would cost more than
        # the statements do. PostgreSQL goes through SQLAlchemy.
        self._cursor = conn.connection.dbapi_connection.cursor() if self.dialect == "sqlite" else None

    def _run(self, key: str, rows: list[dict[str, Any]] | dict[str, Any]) -> int:
        """Execute one of the named statements; returns the rows it changed."""
        if self._cursor is not None:
            if isinstance(rows, dict):
                self._cursor.execute(self._sql[key], rows)
            else:
                self._cursor.executemany(self._sql[key], rows)
            return self._cursor.rowcount
        return self.conn.execute(self._text[key], rows).rowcount or 0

    def _scalar(self, key: str, params: dict[str, Any]) -> Any:
        if self._cursor is not None:
            row = self._cursor.execute(self._sql[key], params).fetchone()
            return row[0] if row else None
        return self.conn.execute(self._text[key], params).scalar()

    @property
    def directions(self) -> dict[str, bool]:
        """Metric directions as this transaction sees them (read once per transaction)."""
        if self._directions is None:
            if self._cursor is not None:
                rows = self._cursor.execute(self._sql["directions"]).fetchall()
                self._directions = {**CORE_DIRECTIONS, **{n: bool(h) for n, h in rows}}
            else:
                self._directions = read_directions(self.conn)
        return self._directions

    def get_meta(self, key: str) -> str | None:
        return self._scalar("get_meta", {"key": key})

    def set_meta(self, key: str, value: str) -> None:
        self._run("meta", {"key": key, "value": value})

    def best(self, ticker: str | None = None) -> dict[str, Any]:
        return read_best(self.conn, ticker, self.directions)

    def claim_keys(self, keys: Sequence[str]) -> set[str]:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        won: set[str] = set()
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 500):
            stmt = (
                insert(T.import_keys)
                .values([{"key": k} for k in unique[i : i + 500]])
                .on_conflict_do_nothing()
                .returning(T.import_keys.c.key)
            )
            won.update(r[0] for r in self.conn.execute(stmt))
        return won

    def _allocate_ids(self, n: int) -> list[int]:
        if self.dialect == "postgresql":
            rows = self.conn.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('pl_records', 'id')) "
                "FROM generate_series(1, %s)",
                (n,),
            ).fetchall()
            return sorted(r[0] for r in rows)
        # SQLite: we hold the write lock (BEGIN IMMEDIATE), so max(id) is ours to extend.
        start = self.last_id()
        return list(range(start + 1, start + 1 + n))

    def insert(self, batch: Batch) -> Inserted:
        sql = self._sql
        # A single record on SQLite takes the id the database gives it (max + 1, as
        # _allocate_ids would): one statement less on the path of every log().
        one = self._cursor is not None and len(batch) == 1
        ids: list[int] = [None] if one else self._allocate_ids(len(batch))  # type: ignore[list-item]
        params_json = batch.json_or_none("params")
        tags_json = batch.json_or_none("tags")
        core_cols = [batch.core[m] for m in CORE_METRICS]
        rows = list(
            zip(ids, batch.ticker, batch.model_name, batch.ts_us, *core_cols, batch.notes,
                params_json, tags_json, strict=True)
        )
        # A bulk load at least as large as the table builds its indexes after the data
        # (one sort each) instead of a million index inserts.
        rebuild = len(rows) >= _BULK_ROWS and ids[0] - 1 <= len(rows)
        if self._cursor is not None:
            if rebuild:
                for index in _DEFERRED_INDEXES:
                    self._cursor.execute(f"DROP INDEX IF EXISTS {index.name}")
            if one:
                self._cursor.execute(sql["insert_records"], rows[0])
                ids = [self._cursor.lastrowid]  # type: ignore[list-item]
            else:
                self._cursor.executemany(sql["insert_records"], rows)
            if rebuild:
                for index in _DEFERRED_INDEXES:
                    index.create(self.conn)
        else:
            self.conn.exec_driver_sql(sql["insert_records"], rows if len(rows) > 1 else rows[0])
        extra_rows = [
            (ids[pos], name, value)
            for pos, d in enumerate(batch.metrics)
            for name, value in d.items()
        ]
        if extra_rows and self._cursor is not None:
            self._cursor.executemany(sql["insert_extra"], extra_rows)
        elif extra_rows:
            self.conn.exec_driver_sql(sql["insert_extra"], extra_rows)
        self.add_labels(ids, batch.params, batch.tags, rebuild=rebuild)
        dirs = self.directions
        best_rows, summary_rows, pair_rows = batch.aggregates(dirs, ids)
        changed = False
        hi = sorted((r for r in best_rows if dirs[r["metric"]]), key=_best_key)
        lo = sorted((r for r in best_rows if not dirs[r["metric"]]), key=_best_key)
        for key, chunk in (("best_hi", hi), ("best_lo", lo)):
            if chunk:
                changed = self._run(key, chunk) > 0 or changed
        if summary_rows:
            summary_rows.sort(key=lambda r: (r["ticker"], r["model_name"], r["metric"]))
            self._run("summary", summary_rows)
        pair_rows.sort(key=lambda r: (r["ticker"], r["model_name"]))
        if not changed and not best_rows:
            # A ticker's first record changes the best-models document even without a metric
            # (with one, its first best entry was inserted above: ``changed`` is already True).
            tickers = sorted({r["ticker"] for r in pair_rows})
            if len(tickers) == 1:
                changed = self._scalar("ticker_known", {"ticker": tickers[0]}) is None
            else:
                known = self.conn.execute(
                    sa.select(sa.func.count(sa.distinct(T.pairs.c.ticker))).where(
                        T.pairs.c.ticker.in_(tickers)
                    )
                ).scalar()
                changed = known != len(tickers)
        self._run("pairs", pair_rows)
        return Inserted(ids, changed)

    def add_labels(
        self,
        ids: Sequence[int],
        params: Sequence[Mapping[str, Any]],
        tags: Sequence[Mapping[str, str]],
        *,
        rebuild: bool = False,
    ) -> None:
        """Count the records' params and tags in ``pl_labels`` and, on SQLite, link each
        record to its labels (what ``history(params=, tags=)`` looks up). A batch without
        params or tags costs nothing here."""
        if not any(params) and not any(tags):
            return
        counts, per_record = collect(params, tags)
        hashes = {label: digest(label) for label in counts}
        rows = sorted(
            ({"h": hashes[lb], "kind": lb[0], "key": lb[1], "value": lb[2], "n": n}
             for lb, n in counts.items()),
            key=lambda r: r["h"],  # one lock order for concurrent PostgreSQL writers
        )
        self._run("labels", rows)
        if self._cursor is None:
            return  # PostgreSQL: the GIN indexes on the JSONB columns find records
        id_of: dict[str, int] = {}
        keys = [r["h"] for r in rows]
        for i in range(0, len(keys), _IN_CHUNK):
            part = keys[i: i + _IN_CHUNK]
            marks = ", ".join("?" * len(part))
            id_of.update(self._cursor.execute(
                f"SELECT h, id FROM pl_labels WHERE h IN ({marks})", part).fetchall())
        link_rows: list[tuple[int, int]] = []
        label_ids: dict[int, list[int]] = {}  # records sharing a labels tuple share its ids
        for rid, labels in zip(ids, per_record, strict=True):
            if labels:
                lids = label_ids.get(id(labels))
                if lids is None:
                    lids = label_ids[id(labels)] = [id_of[hashes[lb]] for lb in labels]
                link_rows += [(rid, lid) for lid in lids]
        if rebuild:
            for index in _DEFERRED_LABEL_INDEXES:
                self._cursor.execute(f"DROP INDEX IF EXISTS {index.name}")
        self._cursor.executemany(self._sql["insert_links"], link_rows)
        if rebuild:
            for index in _DEFERRED_LABEL_INDEXES:
                index.create(self.conn)

    def register_metric(self, name: str, higher_is_better: bool) -> bool:
        """Register (or re-direct) a custom metric and recompute its best entries from
        history in this transaction. True when anything changed."""
        conn = self.conn
        current = conn.execute(
            sa.select(T.metric_defs.c.higher_is_better).where(T.metric_defs.c.name == name)
        ).scalar()
        if current is not None and bool(current) == higher_is_better:
            return False
        conn.execute(sa.delete(T.metric_defs).where(T.metric_defs.c.name == name))
        conn.execute(sa.insert(T.metric_defs).values(name=name, higher_is_better=higher_is_better))
        conn.execute(sa.delete(T.best).where(T.best.c.metric == name))
        order = "DESC" if higher_is_better else "ASC"
        conn.execute(
            sa.text(
                "INSERT INTO pl_best (ticker, metric, model_name, value, ts, record_id) "
                "SELECT ticker, name, model_name, value, ts, id FROM (SELECT r.ticker, e.name, "
                "r.model_name, e.value, r.ts, r.id, ROW_NUMBER() OVER (PARTITION BY r.ticker "
                f"ORDER BY e.value {order}, r.ts, r.id) AS rn FROM pl_extra e JOIN pl_records r "
                "ON r.id = e.record_id WHERE e.name = :name) ranked WHERE rn = 1"
            ),
            {"name": name},
        )
        self._directions = None
        self._bump_generation()  # directions and best entries changed: caches keyed on state must see it
        return True

    def last_id(self) -> int:
        return int(self._scalar("max_id", {}) or 0)

    def iter_batches(self, chunk: int = 20_000, after: int = 0) -> Iterator[tuple[list[int], Batch]]:
        from ..records.batch import Batch

        last = after
        cols = ["id", "ts", "ticker", "model_name", *CORE_METRICS, "notes",
                "CAST(params AS TEXT)", "CAST(tags AS TEXT)"]
        select = f"SELECT {', '.join(cols)} FROM pl_records WHERE id > :last ORDER BY id LIMIT :n"
        while True:
            rows = self.conn.execute(sa.text(select), {"last": last, "n": chunk}).fetchall()
            if not rows:
                return
            c = list(zip(*rows, strict=True))
            ids = list(c[0])
            extras: dict[int, dict[str, float]] = {}
            for rid, name, value in self.conn.execute(
                sa.text(
                    "SELECT record_id, name, value FROM pl_extra WHERE record_id >= :a "
                    "AND record_id <= :b ORDER BY record_id, name"
                ),
                {"a": ids[0], "b": ids[-1]},
            ):
                extras.setdefault(rid, {})[name] = value
            k = 4 + len(CORE_METRICS)
            yield ids, Batch(
                ticker=list(c[2]),
                model_name=list(c[3]),
                ts_us=list(c[1]),
                core={m: list(c[4 + i]) for i, m in enumerate(CORE_METRICS)},
                notes=list(c[k]),
                metrics=[extras.get(rid, {}) for rid in ids],
                params=[json.loads(p) if p else {} for p in c[k + 1]],
                tags=[json.loads(t) if t else {} for t in c[k + 2]],
            )
            last = ids[-1]

    def clear(self) -> None:
        for table in (T.records, T.extra, T.best, T.summary, T.pairs, T.import_keys, T.labels):
            self.conn.execute(sa.delete(table))
        if self.dialect == "sqlite":
            self.conn.execute(sa.delete(T.record_labels))
        self._bump_generation()

    def _bump_generation(self) -> None:
        """Change ``stats()["state"]`` for a change the record count and ids do not show."""
        gen = int(self.get_meta("generation") or 0) + 1
        self.set_meta("generation", str(gen))


def _best_key(r: Mapping[str, Any]) -> tuple[str, str]:
    return (r["ticker"], r["metric"])
