"""PostgreSQL's write transaction: a single ``log()`` in one statement, one round trip.

:class:`~.writes.SQLWriteTx` sends each step of an insert as its own statement: allocate the
id, insert the record, upsert the best rows (two directions), the summary, the pair, ask
whether the ticker is new, read the metric directions. On SQLite each is a function call;
on PostgreSQL each is a network round trip, and eight processes of single ``log()`` calls
reached under a third of the rate of a bare ``INSERT`` plus one upsert per record
(``bench/bench_pg.py``). Here a one-record batch is one statement: the record is inserted
in a CTE and every derived-table upsert reads its id from it, so the server does in one
round trip what took seven.

The upserts are the very statements :mod:`.writes` builds (its ``VALUES (:a, ...)`` turned
into a ``SELECT`` from the inserted record and a typed ``VALUES`` list), so the merge rules
(best ties to the earliest, mergeable statistics) stay in one place. The rows come from
:meth:`Batch.aggregates <perfledger.records.batch.Batch.aggregates>` as for any batch. Larger
batches, and records with params or tags (their labels), take the inherited path or add a
statement for the labels.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ..records.record import CORE_DIRECTIONS, CORE_METRICS
from . import schema as T
from .base import Inserted
from .writes import SQLWriteTx, Statements, _best_key

if TYPE_CHECKING:
    from ..records.batch import Batch

_UPSERT = re.compile(r"^(INSERT INTO (\w+) \(([^)]*)\)) VALUES \(([^)]*)\) (ON CONFLICT .*)$", re.S)
#: Placeholder for the record id in the aggregates: the statement substitutes the real one.
_NO_ID = -1
_RECORD_COLS = ["ticker", "model_name", "ts", *CORE_METRICS, "notes", "params", "tags"]


class _Upsert:
    """One of :mod:`.writes`' upserts, reshaped to read its rows from a ``VALUES`` list
    and the record id from the ``rec`` CTE."""

    def __init__(self, sql: str):
        match = _UPSERT.match(sql)
        assert match, f"not an upsert this module can reshape: {sql[:60]}"
        self.head, table, cols, values, self.tail = match.groups()
        self.cols = [c.strip() for c in cols.split(",")]
        self.keys = [v.strip().lstrip(":") for v in values.split(",")]
        column = T.metadata.tables[table].c
        self.types = {k: column[c].type.compile(dialect=postgresql.dialect())
                      for c, k in zip(self.cols, self.keys, strict=True)}

    def cte(self, name: str, rows: list[dict[str, Any]], params: dict[str, Any]) -> str:
        """``name AS (INSERT .. SELECT .. ON CONFLICT .. RETURNING 1)`` with the rows bound
        into ``params``."""
        data = [k for k in self.keys if k not in ("record_id", "last_id")]
        tuples = []
        for i, row in enumerate(rows):
            cells = []
            for k in data:
                params[f"{name}_{i}_{k}"] = row[k]
                cells.append(f"CAST(%({name}_{i}_{k})s AS {self.types[k]})")
            tuples.append(f"({', '.join(cells)})")
        exprs = ", ".join("rec.id" if k in ("record_id", "last_id") else f"v.{k}" for k in self.keys)
        return (f"{name} AS ({self.head} SELECT {exprs} FROM rec CROSS JOIN (VALUES {', '.join(tuples)}) "
                f"AS v({', '.join(data)}) WHERE true {self.tail} RETURNING 1)")


class PgStatements(Statements):
    """:class:`~.writes.Statements` plus their one-statement forms."""

    def __init__(self) -> None:
        super().__init__("postgresql")
        self.upserts = {k: _Upsert(self.sql[k]) for k in ("best_hi", "best_lo", "summary", "pairs")}


class PgWriteTx(SQLWriteTx):
    """The PostgreSQL write transaction: a one-record insert in one statement."""

    def __init__(self, conn: sa.Connection, statements: PgStatements):
        super().__init__(conn, statements)
        self._upserts = statements.upserts

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
        }
        ctes = [f"rec AS (INSERT INTO pl_records ({', '.join(_RECORD_COLS)}) VALUES "
                f"({', '.join(f'%({c})s' for c in _RECORD_COLS)}) RETURNING id)"]
        if custom:
            cells = []
            for i, (name, value) in enumerate(sorted(custom.items())):
                params[f"x{i}n"], params[f"x{i}v"] = name, value
                cells.append(f"(%(x{i}n)s, CAST(%(x{i}v)s AS DOUBLE PRECISION))")
            ctes.append("ex AS (INSERT INTO pl_extra (record_id, name, value) SELECT rec.id, v.name, v.value "
                        f"FROM rec CROSS JOIN (VALUES {', '.join(cells)}) AS v(name, value))")
        counted = []
        for key, rows in (
            ("best_hi", sorted((r for r in best_rows if dirs[r["metric"]]), key=_best_key)),
            ("best_lo", sorted((r for r in best_rows if not dirs[r["metric"]]), key=_best_key)),
            ("summary", sorted(summary_rows, key=lambda r: (r["ticker"], r["model_name"], r["metric"]))),
            ("pairs", pair_rows),
        ):
            if rows:
                ctes.append(self._upserts[key].cte(key, rows, params))
                counted.append(key)
        # Data-modifying CTEs see the snapshot the statement started from: the ticker is new
        # when no pair of it existed before this record.
        sql = (f"WITH {', '.join(ctes)} SELECT (SELECT id FROM rec), "
               + ", ".join(f"(SELECT COUNT(*) FROM {k})" for k in counted)
               + ", NOT EXISTS (SELECT 1 FROM pl_pairs WHERE ticker = %(ticker)s)")
        row = self.conn.exec_driver_sql(sql, params).one()
        ids = [int(row[0])]
        changed = bool(row[-1]) or any(row[1 + i] for i, k in enumerate(counted) if k.startswith("best"))
        self.add_labels(ids, batch.params, batch.tags)
        return Inserted(ids, changed)
