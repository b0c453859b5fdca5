"""PostgreSQL's initial load: a large batch of records into an EMPTY store, the way
``pg_restore`` loads a table.

Into a store that already holds records, every batch goes through the insert path
(:mod:`.bulk`): its rows update the records' three b-tree and two GIN indexes one by one,
its content keys are claimed one by one in the unique index of ``pl_import_keys``, its
aggregates are merged into the derived tables. Measured (``docs/benchmarks.md``, "the
floor"), the indexes alone cost 4.3x a bare binary COPY of the same rows and the unique
index of the keys 4.1x: maintaining an index row by row costs far more than building it
once from sorted data. When the store is empty there is nothing to merge with, so an
initial load does what a restore does, all in ONE transaction:

1. ``LOCK`` ``pl_import_keys``, ``pl_records``, ``pl_extra``, ``pl_returns`` in ``ACCESS
   EXCLUSIVE`` mode (what ``DROP INDEX`` takes anyway): every other writer, a concurrent
   sync's content check and the dashboard's reads wait until the load commits. Then it
   checks, under the lock, that the store is still empty (records, keys, derived tables);
   if it is not (another sync loaded first), nothing was changed and the caller takes the
   normal path. (The role must own the tables, as the writer role of ``docs/deployment.md``
   does; another role takes the normal path.)
2. drop the records' b-tree and GIN indexes and the keys' primary key (those that exist);
3. per chunk: reserve its ids with one ``setval`` (no other transaction can take ids from
   the records' sequence meanwhile: every statement that does so locks ``pl_records``
   first, and waits), binary ``COPY`` of the rows straight into ``pl_records`` (its
   primary key only), of their custom metrics, kept returns and content keys;
4. rebuild the dropped indexes (one sort each), then compute ``pl_summary``, ``pl_pairs``
   and ``pl_best`` on the server, each with one ``INSERT .. SELECT .. GROUP BY`` from the
   loaded rows (labels are counted per chunk by the shared code).

DDL is transactional in PostgreSQL: a load killed at any point (``kill -9`` of the client,
a lost connection, an error) is rolled back whole, the dropped indexes included
(``tests/test_pg_initial_load.py`` kills one and compares ``pg_indexes``). The derived
tables follow :mod:`..upserts`' rules (best: strictly better, ties to the earliest
``(ts, id)``; summary: count, mean, M2, min, max, the latest value by ``(ts, id)``); mean and
M2 are summed by the server in its own order, so they may differ from the incremental path's
in the last bits, as any two splits of the same values do.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...records.record import CORE_DIRECTIONS, CORE_METRICS
from .. import schema as T

if TYPE_CHECKING:
    from ...records.batch import Batch
    from ..writes import SQLWriteTx

#: The tables an initial load locks, in this order (the order a sync touches them: keys, then
#: records, then the side tables).
_LOCKED = ("pl_import_keys", "pl_records", "pl_extra", "pl_returns")
#: Tables that must be empty for an initial load (the derived ones included: a load computes
#: them from scratch and would collide with rows left over).
_MUST_BE_EMPTY = ("pl_records", "pl_import_keys", "pl_extra", "pl_returns", "pl_best", "pl_summary",
                  "pl_pairs")
#: The records' secondary indexes, dropped during the load and built again after it.
_INDEXES = (*T.RECORD_INDEXES, *T.JSONB_INDEXES)
_RECORD_COLUMNS = ("id", "ticker", "model_name", "ts", *CORE_METRICS, "notes", "params", "tags")
_RECORD_TYPES = ("int8", "text", "text", "int8", *("float8",) * len(CORE_METRICS), "text", "jsonb", "jsonb")
_SEQ = "CAST(pg_get_serial_sequence('pl_records', 'id') AS regclass)"
#: Memory for the index builds and the derived tables' sorts (this transaction only).
_WORK_MEM = "256MB"


def _as_is(text: str) -> str:
    return text


def _value_of(metric: str) -> str:
    """A record ``r``'s value of the metric named by the SQL expression ``metric``."""
    cases = " ".join(f"WHEN '{m}' THEN r.{m}" for m in CORE_METRICS)
    return (f"CASE {metric} {cases} ELSE (SELECT e.value FROM pl_extra e "
            f"WHERE e.record_id = r.id AND e.name = {metric}) END")


def _directions() -> str:
    """Every metric with a direction: ``(name, higher)``, core metrics and registered ones."""
    core = ", ".join(f"('{m}', {'true' if h else 'false'})" for m, h in sorted(CORE_DIRECTIONS.items()))
    return f"SELECT * FROM (VALUES {core}) AS c(name, higher) UNION ALL " \
           "SELECT name, higher_is_better FROM pl_metric_defs"


def _grouped() -> str:
    """Per (ticker, model, metric): count, mean, M2, min, max of the non-missing values. The
    core metrics in ONE scan of the records grouped by (ticker, model), each column
    aggregated on its own, the few aggregated rows then unpivoted (unpivoting the records
    first made six rows of each, measured 30x slower); custom metrics from ``pl_extra``."""
    aggs = ", ".join(f"count({m}) AS {m}_n, avg({m}) AS {m}_mean, var_pop({m}) * count({m}) AS {m}_m2, "
                     f"min({m}) AS {m}_lo, max({m}) AS {m}_hi" for m in CORE_METRICS)
    rows = ", ".join(f"('{m}', a.{m}_n, a.{m}_mean, a.{m}_m2, a.{m}_lo, a.{m}_hi)" for m in CORE_METRICS)
    return (
        "SELECT a.ticker, a.model_name, m.metric, m.n, m.mean, m.m2, m.lo, m.hi "
        f"FROM (SELECT ticker, model_name, {aggs} FROM pl_records GROUP BY ticker, model_name) AS a "
        f"CROSS JOIN LATERAL (VALUES {rows}) AS m(metric, n, mean, m2, lo, hi) WHERE m.n > 0 "
        "UNION ALL SELECT r.ticker, r.model_name, e.name, count(*), avg(e.value), "
        "var_pop(e.value) * count(*), min(e.value), max(e.value) "
        "FROM pl_extra e JOIN pl_records r ON r.id = e.record_id GROUP BY r.ticker, r.model_name, e.name"
    )


#: ``pl_pairs``: one scan of the records.
_PAIRS = ("INSERT INTO pl_pairs (ticker, model_name, n, first_ts, last_ts) "
          "SELECT ticker, model_name, count(*), min(ts), max(ts) FROM pl_records GROUP BY ticker, model_name")
#: ``pl_summary``: the groups' statistics (:func:`_grouped`), then each group's latest value
#: (by ``(ts, id)``) read off the (model, ticker, ts, id) index backwards.
_SUMMARY = (
    "INSERT INTO pl_summary (ticker, model_name, metric, n, mean, m2, min, max, last_value, last_ts, "
    "last_id) SELECT g.ticker, g.model_name, g.metric, g.n, g.mean, g.m2, g.lo, g.hi, l.value, l.ts, l.id "
    f"FROM ({_grouped()}) AS g "
    f"CROSS JOIN LATERAL (SELECT r.ts, r.id, {_value_of('g.metric')} AS value FROM pl_records r "
    f"WHERE r.model_name = g.model_name AND r.ticker = g.ticker AND {_value_of('g.metric')} IS NOT NULL "
    "ORDER BY r.ts DESC, r.id DESC LIMIT 1) AS l"
)


def _best() -> str:
    """``pl_best``: each (ticker, metric)'s best value from the summary (``b``); the records
    holding one (one scan of the records, a hashed lookup per core metric, and the custom
    metrics' rows that match); of those, per (ticker, metric), the earliest by ``(ts, id)``."""
    held = " OR ".join(f"(r.ticker, r.{m}) IN (SELECT ticker, value FROM b WHERE metric = '{m}')"
                       for m in CORE_METRICS)
    pairs = ", ".join(f"('{m}', c.{m})" for m in CORE_METRICS)
    return (
        "WITH b AS MATERIALIZED (SELECT s.ticker, s.metric, "
        "CASE WHEN d.higher THEN max(s.max) ELSE min(s.min) END AS value FROM pl_summary s "
        f"JOIN ({_directions()}) AS d ON d.name = s.metric GROUP BY s.ticker, s.metric, d.higher), "
        f"c AS MATERIALIZED (SELECT * FROM pl_records r WHERE {held}) "
        "INSERT INTO pl_best (ticker, metric, model_name, value, ts, record_id) "
        "SELECT DISTINCT ON (v.ticker, v.metric) v.ticker, v.metric, v.model_name, v.value, v.ts, v.id FROM ("
        f"SELECT c.id, c.ticker, c.model_name, c.ts, m.metric, m.value FROM c "
        f"CROSS JOIN LATERAL (VALUES {pairs}) AS m(metric, value) "
        "UNION ALL SELECT r.id, r.ticker, r.model_name, r.ts, e.name, e.value "
        "FROM pl_extra e JOIN pl_records r ON r.id = e.record_id) AS v "
        "JOIN b ON b.ticker = v.ticker AND b.metric = v.metric AND b.value = v.value "
        "ORDER BY v.ticker, v.metric, v.ts, v.id"
    )


_BEST = _best()


class InitialLoad:
    """An initial load in progress in a :class:`~.writer.PgWriteTx` (made by
    :meth:`~.writer.PgWriteTx.initial_load`, which has locked the tables, found them empty
    and dropped the indexes): :meth:`add` each batch, then :meth:`finish`, then commit."""

    def __init__(self, tx: SQLWriteTx, dropped: list[sa.Index], keys_pkey: str | None):
        self._tx = tx
        self._dropped = dropped
        self._keys_pkey = keys_pkey
        self.loaded = 0
        #: Seconds spent per step (client clock: the server's work plus the round trips), for
        #: the benchmarks' account of where a load's time goes (``bench/bench_initial_load.py``).
        self.timings: dict[str, float] = {}

    def _clock(self, step: str, since: float) -> None:
        self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - since

    @classmethod
    def begin(cls, tx: SQLWriteTx) -> InitialLoad | None:
        """Lock, check emptiness under the lock, drop the indexes; None (nothing changed,
        the locks held until ``tx`` ends) when the store is not empty."""
        conn = tx.conn
        t0 = time.perf_counter()
        # Dropping an index takes the table's owner (or a member of its role): a role granted
        # only the right to write its rows (not the documented writer, which owns the tables)
        # takes the normal path rather than failing.
        if not conn.exec_driver_sql(
                "SELECT bool_and(pg_has_role(relowner, 'MEMBER')) FROM pg_class WHERE oid IN "
                "(CAST('pl_records' AS regclass), CAST('pl_import_keys' AS regclass))").scalar():
            return None
        conn.exec_driver_sql(f"LOCK TABLE {', '.join(_LOCKED)} IN ACCESS EXCLUSIVE MODE")
        held = conn.exec_driver_sql(
            "SELECT " + " OR ".join(f"EXISTS (SELECT 1 FROM {t})" for t in _MUST_BE_EMPTY)).scalar()
        if held:
            return None
        conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{_WORK_MEM}'")
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{_WORK_MEM}'")
        # A cache of lateral lookups keyed by every core metric's value never hits (measured).
        conn.exec_driver_sql("SET LOCAL enable_memoize = off")
        present = {r[0] for r in conn.exec_driver_sql(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = 'pl_records'")}
        dropped = [ix for ix in _INDEXES if ix.name in present]
        for ix in dropped:
            conn.execute(sa.schema.DropIndex(ix))
        pkey = conn.exec_driver_sql(
            "SELECT conname FROM pg_constraint WHERE conrelid = CAST('pl_import_keys' AS regclass) "
            "AND contype = 'p'").scalar()
        if pkey is not None:
            conn.exec_driver_sql(f"ALTER TABLE pl_import_keys DROP CONSTRAINT {_quoted(conn, pkey)}")
        load = cls(tx, dropped, pkey)
        load._clock("lock, check, drop indexes", t0)
        return load

    def add(self, batch: Batch, keys: Sequence[str]) -> list[int]:
        """Load ``batch`` (records, custom metrics, kept returns, labels counted) and its
        records' content keys ``keys`` (unique, none loaded before); returns their ids."""
        from psycopg.types.json import Jsonb

        n = len(batch)
        if not n:
            return []
        t0 = time.perf_counter()
        tx = self._tx
        dbapi = tx.conn.connection.dbapi_connection
        with dbapi.cursor(binary=True) as cur:
            cur.execute(f"SELECT setval({_SEQ}, nextval({_SEQ}) + %s - 1)", (n,))
            last = int(cur.fetchone()[0])
            ids = list(range(last - n + 1, last + 1))
            params = [None if p is None else Jsonb(p, dumps=_as_is) for p in batch.json_or_none("params")]
            tags = [None if t is None else Jsonb(t, dumps=_as_is) for t in batch.json_or_none("tags")]
            core = [batch.core[m] for m in CORE_METRICS]
            rows = zip(ids, batch.ticker, batch.model_name, batch.ts_us, *core, batch.notes, params, tags,
                       strict=True)
            _copy(cur, "pl_records", _RECORD_COLUMNS, _RECORD_TYPES, rows)
            extra = [(ids[pos], name, value)
                     for pos, d in enumerate(batch.metrics) for name, value in d.items()]
            if extra:
                _copy(cur, "pl_extra", ("record_id", "name", "value"), ("int8", "text", "float8"), extra)
            if batch.returns is not None:
                kept = [(ids[pos], r.n, r.values, r.dates)
                        for pos, r in enumerate(batch.returns) if r is not None]
                if kept:
                    _copy(cur, "pl_returns", ("record_id", "n", "vals", "dates"),
                          ("int8", "int8", "bytea", "bytea"), kept)
            _copy(cur, "pl_import_keys", ("key",), ("text",), ((k,) for k in keys))
        tx.add_labels(ids, batch.params, batch.tags)
        self.loaded += n
        self._clock("rows, keys (COPY)", t0)
        return ids

    def finish(self) -> None:
        """Build the dropped indexes again, then the derived tables from the loaded rows."""
        conn = self._tx.conn
        for ix in self._dropped:
            t0 = time.perf_counter()
            conn.execute(sa.schema.CreateIndex(ix))
            self._clock(f"index {ix.name}", t0)
        if self._keys_pkey is not None:
            t0 = time.perf_counter()
            conn.exec_driver_sql(
                f"ALTER TABLE pl_import_keys ADD CONSTRAINT {_quoted(conn, self._keys_pkey)} "
                "PRIMARY KEY (key)")
            self._clock("index pl_import_keys (primary key)", t0)
        if self.loaded:
            steps = {"ANALYZE pl_records": "ANALYZE pl_records (ticker, model_name, ts)",  # plans the lookups
                     "pl_pairs": _PAIRS, "pl_summary": _SUMMARY, "pl_best": _BEST}
            for step, sql in steps.items():
                t0 = time.perf_counter()
                conn.exec_driver_sql(sql)
                self._clock(step, t0)


def _quoted(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def _copy(cur: Any, table: str, columns: Sequence[str], types: Sequence[str], rows: Any) -> None:
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types(list(types))
        for row in rows:
            cp.write_row(row)
