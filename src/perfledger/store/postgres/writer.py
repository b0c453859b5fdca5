"""PostgreSQL's write transaction: the shared insert through SQLAlchemy, and a single
``log()`` in one statement, one round trip.

The shared insert sends each step as its own statement: allocate the ids, insert the
records, upsert the best rows (two directions), the summary, the pairs, ask whether the
ticker is new. On SQLite each is a function call; on PostgreSQL each is a network round trip,
and eight processes of single ``log()`` calls reached under a third of the rate of a bare
``INSERT`` plus one upsert per record (``bench/bench_pg.py``). So a one-record batch is ONE
statement (:func:`single_record_statement`): the record is inserted in a CTE, its metrics
come in as arrays (unnested once), and every derived-table upsert selects its row from
those, the record's id included. The upserts are :mod:`..upserts`' own
(:meth:`~..upserts.Upsert.from_select`), so the merge rules stay in one place; a single
record's aggregates are the record itself, and ``tests/test_pg_writes.py`` holds the two
paths to leaving the same tables. The statement's text is the same for every record, so it
is compiled once and prepared on the server once per connection. Records with params or
tags add one statement for their labels.

Where a ``log()``'s time went (``bench/bench_pg.py``, one process, the server committing
asynchronously so that only client and protocol costs show): four round trips, as many as
the bare ``INSERT`` + upsert baseline: the pool's liveness ping, psycopg's ``BEGIN``, the
statement, ``COMMIT``. Client CPU was about 0.15 ms above the baseline's. So a transaction
whose body is this one statement and nothing else (``writing(single=True)``: a ``log()``
without params or tags) sends it alone in autocommit mode: one statement is atomic by
itself, so it is its own transaction, one round trip. The ping became a look at the socket
(:mod:`.store`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, psycopg

from ...records.record import CORE_DIRECTIONS, CORE_METRICS
from .. import schema as T
from ..base import Inserted
from ..upserts import AGGREGATES
from ..writes import SQLWriteTx, Statements
from . import bulk
from .initial_load import InitialLoad

if TYPE_CHECKING:
    from ...records.batch import Batch

_RECORD_COLUMNS = tuple(c.name for c in T.records.c if c.name != "id")
#: The arrays a single record's metrics are passed in, and their element types.
_METRIC_ARRAYS = {"metric": sa.String(64), "value": sa.Float(), "higher": sa.Boolean(),
                  "custom": sa.Boolean()}


def single_record_statement() -> sa.Select[Any]:
    """One record and its aggregates in one statement: ``WITH rec AS (INSERT .. RETURNING
    ..), m AS (its metrics), ex AS (its custom metrics), best_hi AS (upsert), .. SELECT
    rec's id, how many rows each best upsert changed, whether the ticker was new``.

    A single record's aggregates are the record itself (a count of 1, its value as mean,
    min, max and latest, an M2 of 0; a best candidate per metric with a direction), so they
    are selected from ``rec`` and ``m``, the record's metrics unnested from three arrays:
    ``metric``, ``value`` and ``higher`` (NULL for a metric without a direction), with
    ``custom`` marking those stored in ``pl_extra``. The merges are :mod:`..upserts`' own."""
    insert = postgresql.insert
    rec = insert(T.records).values(
        {c: sa.bindparam(c, type_=T.records.c[c].type) for c in _RECORD_COLUMNS}
    ).returning(T.records.c.id, T.records.c.ticker, T.records.c.model_name, T.records.c.ts).cte("rec")
    arrays = [sa.cast(sa.bindparam(name), ARRAY(kind)) for name, kind in _METRIC_ARRAYS.items()]
    m = sa.select(sa.func.unnest(*arrays).table_valued(*_METRIC_ARRAYS).render_derived(name="v")).cte("m")

    def each_metric(*cols: Any) -> sa.Select[Any]:
        # The WHERE keeps "JOIN .. ON true ON CONFLICT" from reading as one ON clause.
        return sa.select(*cols).select_from(rec).join(m, sa.true())

    one, zero = sa.literal_column("1"), sa.literal_column("0.0")
    sources = {
        "best_hi": each_metric(rec.c.ticker, m.c.metric, rec.c.model_name, m.c.value, rec.c.ts,
                               rec.c.id).where(m.c.higher),
        "best_lo": each_metric(rec.c.ticker, m.c.metric, rec.c.model_name, m.c.value, rec.c.ts,
                               rec.c.id).where(sa.not_(m.c.higher)),
        "summary": each_metric(rec.c.ticker, rec.c.model_name, m.c.metric, one, m.c.value, zero,
                               m.c.value, m.c.value, m.c.value, rec.c.ts, rec.c.id).where(sa.true()),
        "pairs": sa.select(rec.c.ticker, rec.c.model_name, one, rec.c.ts, rec.c.ts).where(sa.true()),
    }
    ex = insert(T.extra).from_select(
        ["record_id", "name", "value"], each_metric(rec.c.id, m.c.metric, m.c.value).where(m.c.custom)
    ).returning(one).cte("ex")
    counted = [upsert.from_select(insert, sources[name]).returning(one).cte(name)
               for name, upsert in AGGREGATES.items()]
    new_ticker = ~sa.exists().where(T.pairs.c.ticker == sa.bindparam("ticker"))
    return sa.select(
        sa.select(rec.c.id).scalar_subquery(),
        sa.select(sa.func.count()).select_from(ex).scalar_subquery(),
        *[sa.select(sa.func.count()).select_from(cte).scalar_subquery() for cte in counted],
        new_ticker,
    )


class PgStatements(Statements):
    """:class:`~..writes.Statements`, plus the one-statement form of a single record,
    compiled for the server's own ``$1`` parameters: it is sent as it is (psycopg's
    ``RawCursor``), prepared once per connection, then only bound and executed."""

    def __init__(self, dialect: sa.Dialect):
        super().__init__(postgresql.insert, dialect, psycopg.dialect(paramstyle="format"))
        compiled = single_record_statement().compile(dialect=psycopg.dialect(paramstyle="numeric_dollar"))
        self.single = compiled.string
        self.single_params = tuple(compiled.positiontup or ())
        # Claiming a sync's or an import's content keys: the whole list as one array, one
        # statement (the shared path compiles a 500-row VALUES per call).
        keys = sa.func.unnest(sa.cast(sa.bindparam("keys"), ARRAY(sa.String(32))))
        self.claim = (
            postgresql.insert(T.import_keys).from_select(["key"], sa.select(keys))
            .on_conflict_do_nothing().returning(T.import_keys.c.key)
            .compile(dialect=dialect).string
        )
        self.bulk = bulk.BulkStatements(dialect)


class PgWriteTx(SQLWriteTx):
    """The PostgreSQL write transaction: a one-record insert in one statement; in a
    ``single`` transaction (the insert is its whole body) that statement commits itself."""

    _st: PgStatements

    def __init__(self, conn: sa.Connection, statements: Statements, single: bool = False):
        super().__init__(conn, statements)
        self._single_ok = single
        self._self_committed = False

    def _guard(self) -> None:
        if self._self_committed:  # a broken promise would split the transaction: refuse it
            raise RuntimeError("a statement after the self-committing insert of a single-insert "
                               "transaction (writing(single=True))")

    def _execute(self, sql: str, rows: Sequence[Any] | Mapping[str, Any]) -> int:
        self._guard()
        return self.conn.exec_driver_sql(sql, rows).rowcount or 0  # type: ignore[arg-type]

    def _fetch(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        self._guard()
        return [tuple(r) for r in self.conn.exec_driver_sql(sql, params)]  # type: ignore[arg-type]

    def _single(self, args: tuple[Any, ...], alone: bool) -> tuple[Any, ...]:
        """Run the single-record statement on the driver's connection, prepared on the
        server: inside this transaction, or, ``alone`` and before anything else was sent,
        in autocommit mode (the statement is then the whole transaction: no ``BEGIN``, no
        ``COMMIT``; the store's commit finds nothing open and sends nothing)."""
        from psycopg import RawCursor
        from psycopg.pq import TransactionStatus

        self._guard()
        dbapi = self.conn.connection.dbapi_connection
        alone = alone and dbapi.info.transaction_status == TransactionStatus.IDLE
        if alone:
            dbapi.autocommit = True
        try:
            with RawCursor(dbapi) as cur:
                cur.execute(self._st.single, args, prepare=True)
                row = cur.fetchone()
        finally:
            if alone:
                dbapi.autocommit = False
        self._self_committed = alone
        return row  # type: ignore[return-value]

    def _hold_records(self) -> None:
        # Blocks other transactions' INSERT/UPDATE/DELETE on the records (reads go on) until
        # this one ends; taken first, before this transaction holds any other lock.
        self._execute("LOCK TABLE pl_records, pl_extra IN SHARE ROW EXCLUSIVE MODE", {})

    def claim_keys(self, keys: Sequence[str]) -> set[str]:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return set()
        return {r[0] for r in self._fetch(self._st.claim, {"keys": unique})}

    def initial_load(self) -> InitialLoad | None:
        return InitialLoad.begin(self)

    def _allocate_ids(self, n: int) -> list[int]:
        # The records' table locked first (the lock its INSERT takes anyway): an initial load
        # reserves its ids with setval under its own lock of the table (:mod:`.initial_load`).
        self._execute(self._st.bulk.lock_records, {})
        rows = self.conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence('pl_records', 'id')) FROM generate_series(1, %s)", (n,)
        ).fetchall()
        return sorted(r[0] for r in rows)

    def insert(self, batch: Batch) -> Inserted:
        if len(batch) >= bulk.BULK_ROWS:
            return self._insert_bulk(batch)
        if len(batch) != 1 or batch.returns is not None:  # a kept return series: its own row
            return super().insert(batch)
        custom = batch.metrics[0]
        # Core metrics' directions are fixed (their names cannot be registered): the
        # directions table is read only for a record with custom metrics.
        dirs = self.directions if custom else CORE_DIRECTIONS
        values = {m: batch.core[m][0] for m in CORE_METRICS if batch.core[m][0] is not None}
        values.update(custom)
        names = sorted(values)  # one lock order for every writer
        params: dict[str, Any] = {
            "ticker": batch.ticker[0], "model_name": batch.model_name[0], "ts": batch.ts_us[0],
            **{m: batch.core[m][0] for m in CORE_METRICS}, "notes": batch.notes[0],
            "params": batch.json_or_none("params")[0], "tags": batch.json_or_none("tags")[0],
            "metric": names, "value": [values[n] for n in names],
            "higher": [dirs.get(n) for n in names], "custom": [n in custom for n in names],
        }
        labelled = bool(batch.params[0]) or bool(batch.tags[0])
        row = self._single(tuple(params[name] for name in self._st.single_params),
                           alone=self._single_ok and not labelled)
        ids = [int(row[0])]
        changed = bool(row[-1]) or bool(row[2]) or bool(row[3])  # a new ticker, or a best row changed
        self.add_labels(ids, batch.params, batch.tags)
        return Inserted(ids, changed)

    def _insert_bulk(self, batch: Batch) -> Inserted:
        """A large batch through binary COPY and one merge per derived table (:mod:`.bulk`)."""
        self._guard()
        dirs = self.directions
        ids, changed = bulk.insert_bulk(self.conn.connection.dbapi_connection, self._st.bulk, batch, dirs,
                                        batch.json_or_none("params"), batch.json_or_none("tags"))
        self.add_labels(ids, batch.params, batch.tags)
        return Inserted(ids, changed)
