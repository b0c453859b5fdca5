"""PostgreSQL's write transaction: the shared insert through SQLAlchemy, and a single
``log()`` in one statement, one round trip.

The shared insert sends each step as its own statement: allocate the ids, insert the
records, upsert the best rows (two directions), the summary, the pairs, ask whether the
ticker is new. On SQLite each is a function call; on PostgreSQL each is a network round trip,
and eight processes of single ``log()`` calls reached under a third of the rate of a bare
``INSERT`` plus one upsert per record (``bench/bench_pg.py``). So a one-record batch is ONE
statement (:func:`single_record_statement`): the record is inserted in a CTE and every
derived-table upsert reads its id from it, its rows from ``unnest()`` of arrays. The upserts
are :mod:`..upserts`' own (:meth:`~..upserts.Upsert.from_select`), so the merge rules stay
in one place; the rows come from :meth:`Batch.aggregates
<perfledger.records.batch.Batch.aggregates>` as for any batch. The statement's text is the
same for every record (arrays, not a ``VALUES`` list per row count), so it is compiled once
and psycopg prepares it on the server after a few uses. Records with params or tags add one
statement for their labels.
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
from ..upserts import AGGREGATES, RECORD_ID_COLUMNS
from ..writes import SQLWriteTx, Statements

if TYPE_CHECKING:
    from ...records.batch import Batch

#: Placeholder for the record id in the aggregates: the statement takes the real one.
_NO_ID = -1
_RECORD_COLUMNS = tuple(c.name for c in T.records.c if c.name != "id")


def single_record_statement() -> sa.Select[Any]:
    """One record and its aggregates in one statement: ``WITH rec AS (INSERT .. RETURNING
    id), ex AS (custom metrics), best_hi AS (upsert), .. SELECT rec's id, how many rows each
    best upsert changed, and whether the ticker was new``. Parameters: the record's columns
    by name, and for each upsert ``<name>_<column>`` arrays (empty when it has no rows)."""
    insert = postgresql.insert
    rec = insert(T.records).values(
        {c: sa.bindparam(c, type_=T.records.c[c].type) for c in _RECORD_COLUMNS}
    ).returning(T.records.c.id).cte("rec")

    def rows_of(name: str, table: sa.Table, columns: Sequence[str]) -> Any:
        arrays = [sa.cast(sa.bindparam(f"{name}_{c}"), ARRAY(table.c[c].type)) for c in columns]
        return sa.func.unnest(*arrays).table_valued(*columns).render_derived(name=f"{name}_v")

    extra = rows_of("ex", T.extra, ("name", "value"))
    ex = insert(T.extra).from_select(
        ["record_id", "name", "value"],
        sa.select(rec.c.id, extra.c.name, extra.c.value).select_from(rec).join(extra, sa.true()),
    ).returning(sa.literal_column("1")).cte("ex")
    counted = []
    for name, upsert in AGGREGATES.items():
        data = [c for c in upsert.columns if c not in RECORD_ID_COLUMNS]
        v = rows_of(name, upsert.table, data)
        cols = [rec.c.id if c in RECORD_ID_COLUMNS else v.c[c] for c in upsert.columns]
        # The WHERE keeps "JOIN .. ON true ON CONFLICT" from reading as one ON clause.
        select = sa.select(*cols).select_from(rec).join(v, sa.true()).where(sa.true())
        counted.append(upsert.from_select(insert, select).returning(sa.literal_column("1")).cte(name))
    new_ticker = ~sa.exists().where(T.pairs.c.ticker == sa.bindparam("ticker"))
    return sa.select(
        sa.select(rec.c.id).scalar_subquery(),
        sa.select(sa.func.count()).select_from(ex).scalar_subquery(),
        *[sa.select(sa.func.count()).select_from(cte).scalar_subquery() for cte in counted],
        new_ticker,
    )


class PgStatements(Statements):
    """:class:`~..writes.Statements`, plus the one-statement form of a single record."""

    def __init__(self, dialect: sa.Dialect):
        super().__init__(postgresql.insert, dialect, psycopg.dialect(paramstyle="format"))
        self.single = single_record_statement().compile(dialect=dialect).string


class PgWriteTx(SQLWriteTx):
    """The PostgreSQL write transaction: a one-record insert in one statement."""

    _st: PgStatements

    def _execute(self, sql: str, rows: Sequence[Any] | Mapping[str, Any]) -> int:
        return self.conn.exec_driver_sql(sql, rows).rowcount or 0  # type: ignore[arg-type]

    def _fetch(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.exec_driver_sql(sql, params)]  # type: ignore[arg-type]

    def _allocate_ids(self, n: int) -> list[int]:
        rows = self.conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence('pl_records', 'id')) FROM generate_series(1, %s)", (n,)
        ).fetchall()
        return sorted(r[0] for r in rows)

    def insert(self, batch: Batch) -> Inserted:
        if len(batch) != 1:
            return super().insert(batch)
        custom = batch.metrics[0]
        # Core metrics' directions are fixed (their names cannot be registered): the
        # directions table is read only for a record with custom metrics.
        dirs = self.directions if custom else CORE_DIRECTIONS
        best_rows, summary_rows, pair_rows = batch.aggregates(dirs, [_NO_ID])
        params: dict[str, Any] = {
            "ticker": batch.ticker[0], "model_name": batch.model_name[0], "ts": batch.ts_us[0],
            **{m: batch.core[m][0] for m in CORE_METRICS}, "notes": batch.notes[0],
            "params": batch.json_or_none("params")[0], "tags": batch.json_or_none("tags")[0],
            "ex_name": list(custom), "ex_value": list(custom.values()),
        }
        by_metric = sorted(best_rows, key=lambda r: r["metric"])  # one lock order for all writers
        rows = {
            "best_hi": [r for r in by_metric if dirs[r["metric"]]],
            "best_lo": [r for r in by_metric if not dirs[r["metric"]]],
            "summary": sorted(summary_rows, key=lambda r: r["metric"]),
            "pairs": pair_rows,
        }
        for name, upsert in AGGREGATES.items():
            for c in upsert.columns:
                if c not in RECORD_ID_COLUMNS:
                    params[f"{name}_{c}"] = [r[c] for r in rows[name]]
        row = self.conn.exec_driver_sql(self._st.single, params).one()
        ids = [int(row[0])]
        changed = bool(row[-1]) or bool(row[2]) or bool(row[3])  # a new ticker, or a best row changed
        self.add_labels(ids, batch.params, batch.tags)
        return Inserted(ids, changed)
