"""PostgreSQL's bulk write path: a large batch through binary ``COPY`` and set-based merges.

The shared insert (:mod:`..writes`) sends a batch's records as one ``INSERT`` per row
(psycopg pipelines them, but the server still parses, plans and executes each) and each
derived-table row as its own upsert: a million-record ``log_many`` or sync into PostgreSQL
took 15-28x a bare binary ``COPY`` of the same rows (``docs/benchmarks.md``). From
:data:`BULK_ROWS` records on, a batch goes this way instead, in the caller's transaction on
the same connection (so everything still commits or rolls back together):

1. its record ids, ``nextval`` of the records' sequence, in one statement answered as one
   binary array (ids stay the sequence's: concurrent single ``log()`` calls go on);
2. its records, binary ``COPY`` into a session-temporary staging table, then one
   ``INSERT .. SELECT`` into ``pl_records`` (measured faster than ``COPY`` straight into
   the indexed table: the server fills the indexes from one executor pass); custom metrics
   and kept return series by binary ``COPY`` straight into their tables;
3. its aggregates (computed once per batch, :meth:`~perfledger.records.batch.Batch.aggregates`,
   as for every insert), ``COPY`` into staging tables, then merged by ONE
   ``INSERT .. SELECT .. ON CONFLICT`` per derived table, rows in key order (one lock
   order for concurrent writers): the merge rules are :mod:`..upserts`' own
   (:meth:`~..upserts.Upsert.from_select`), not a second spelling.

A content-key claim (sync, import) stays one statement (:attr:`.writer.PgStatements.claim`,
``INSERT .. SELECT unnest(keys) ON CONFLICT DO NOTHING RETURNING``): the unique index of
``pl_import_keys`` is what keeps concurrent syncs of one source from storing it twice.

The staging tables are ``TEMPORARY .. ON COMMIT DELETE ROWS``: private to the session,
created once per pooled connection, emptied by every commit (and by a rollback, which
takes back their rows like any other). No SQL text is built per call: every statement is
compiled once (:class:`BulkStatements`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ...records.record import CORE_METRICS
from .. import schema as T
from ..upserts import AGGREGATES

if TYPE_CHECKING:
    from ...records.batch import Batch

#: From this many records a batch takes the bulk path (below it, the per-row statements of
#: the shared insert cost less than creating and filling staging tables).
BULK_ROWS = 2_000

#: The staging table of a batch's records: ``pl_records``' columns, params and tags as JSON
#: text (cast to JSONB by the INSERT .. SELECT; binary COPY would need them as JSONB's own
#: wire format).
_STAGE_RECORDS = "pl_bulk_records"
_RECORD_COLUMNS = ("id", "ticker", "model_name", "ts", *CORE_METRICS, "notes", "params", "tags")
_RECORD_TYPES = ("int8", "text", "text", "int8", *("float8",) * len(CORE_METRICS), "text", "text", "text")
#: Binary COPY wire types of the tables filled straight and of the aggregates' staging tables.
_EXTRA_TYPES = ("int8", "text", "float8")
_RETURNS_TYPES = ("int8", "int8", "bytea", "bytea")
_PG_TYPES = {"int8": "BIGINT", "text": "TEXT", "float8": "DOUBLE PRECISION", "bytea": "BYTEA"}


def _wire(column: sa.Column[Any]) -> str:
    """A column's binary COPY type (its staging table's type)."""
    if isinstance(column.type, sa.Float):
        return "float8"
    if isinstance(column.type, (sa.BigInteger, sa.Integer)):
        return "int8"
    return "text"


def _create(name: str, columns: Sequence[str], types: Sequence[str]) -> str:
    cols = ", ".join(f"{c} {_PG_TYPES[t]}" for c, t in zip(columns, types, strict=True))
    return f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({cols}) ON COMMIT DELETE ROWS"


def _copy(name: str, columns: Sequence[str]) -> str:
    return f"COPY {name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"


class BulkStatements:
    """The bulk path's statements, compiled once per store."""

    def __init__(self, dialect: sa.Dialect):
        #: Taken before ids are drawn from the records' sequence (the lock the INSERT takes
        #: anyway): an initial load reserves a range of ids with ``setval`` while it holds the
        #: table, so nobody may draw one meanwhile (:mod:`.initial_load`).
        self.lock_records = "LOCK TABLE pl_records IN ROW EXCLUSIVE MODE"
        self.ids = ("SELECT array_agg(nextval(s.seq)) FROM (SELECT CAST(pg_get_serial_sequence("
                    "'pl_records', 'id') AS regclass) AS seq) AS s, generate_series(1, %s)")
        self.create = [_create(_STAGE_RECORDS, _RECORD_COLUMNS, _RECORD_TYPES)]
        staged_tables = [_STAGE_RECORDS]
        self.copy_records = _copy(_STAGE_RECORDS, _RECORD_COLUMNS)
        stage = sa.table(_STAGE_RECORDS, *(sa.column(c) for c in _RECORD_COLUMNS))
        jsonb = postgresql.JSONB()
        picked = [
            sa.cast(stage.c[c], jsonb) if c in ("params", "tags") else stage.c[c] for c in _RECORD_COLUMNS
        ]
        self.insert_records = (
            sa.insert(T.records).from_select(list(_RECORD_COLUMNS), sa.select(*picked))
            .compile(dialect=dialect).string
        )
        self.copy_extra = _copy(T.extra.name, ("record_id", "name", "value"))
        self.copy_returns = _copy(T.returns.name, ("record_id", "n", "vals", "dates"))
        #: Per derived table: its staging table's COPY, its wire types, its columns, and the
        #: merge from the staging table, rows in key order.
        self.merge: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str]] = {}
        for name, upsert in AGGREGATES.items():
            staged = f"pl_bulk_{name}"
            cols = upsert.columns
            types = tuple(_wire(upsert.table.c[c]) for c in cols)
            self.create.append(_create(staged, cols, types))
            staged_tables.append(staged)
            src = sa.table(staged, *(sa.column(c) for c in cols))
            select = sa.select(*(src.c[c] for c in cols)).order_by(*(src.c[k] for k in upsert.key))
            merge = upsert.from_select(postgresql.insert, select).compile(dialect=dialect).string
            self.merge[name] = (_copy(staged, cols), types, cols, merge)
        tickers = sa.bindparam("tickers", type_=postgresql.ARRAY(sa.String()))
        self.known_tickers = (
            sa.select(sa.func.count(sa.distinct(T.pairs.c.ticker)))
            .where(T.pairs.c.ticker == sa.func.any(tickers)).compile(dialect=dialect).string
        )
        #: Emptied before use: a transaction may insert more than one bulk batch (a restore).
        self.empty = f"TRUNCATE {', '.join(staged_tables)}"


def _copy_rows(cur: Any, sql: str, types: Sequence[str], rows: Any) -> None:
    with cur.copy(sql) as cp:
        cp.set_types(list(types))
        for row in rows:
            cp.write_row(row)


def insert_bulk(dbapi: Any, st: BulkStatements, batch: Batch, directions: Mapping[str, bool],
                params_json: Sequence[str | None], tags_json: Sequence[str | None]
                ) -> tuple[list[int], bool]:
    """Insert ``batch`` (records, custom metrics, kept returns) and merge its aggregates,
    on ``dbapi`` (the psycopg connection, inside the caller's transaction). Returns the
    records' ids (in the batch's order) and whether the best-models document changed (a
    best entry, or a ticker's first record)."""
    n = len(batch)
    with dbapi.cursor(binary=True) as cur:
        cur.execute(st.lock_records)
        cur.execute(st.ids, (n,))
        ids = sorted(cur.fetchone()[0])
        for create in st.create:
            cur.execute(create)
        cur.execute(st.empty)
        core = [batch.core[m] for m in CORE_METRICS]
        rows = zip(ids, batch.ticker, batch.model_name, batch.ts_us, *core, batch.notes, params_json,
                   tags_json, strict=True)
        _copy_rows(cur, st.copy_records, _RECORD_TYPES, rows)
        cur.execute(st.insert_records)
        extra = [(ids[pos], name, value) for pos, d in enumerate(batch.metrics) for name, value in d.items()]
        if extra:
            _copy_rows(cur, st.copy_extra, _EXTRA_TYPES, extra)
        if batch.returns is not None:
            kept = [(ids[pos], r.n, r.values, r.dates)
                    for pos, r in enumerate(batch.returns) if r is not None]
            if kept:
                _copy_rows(cur, st.copy_returns, _RETURNS_TYPES, kept)
        best_rows, summary_rows, pair_rows = batch.aggregates(dict(directions), ids)
        staged = {
            "best_hi": [r for r in best_rows if directions[r["metric"]]],
            "best_lo": [r for r in best_rows if not directions[r["metric"]]],
            "summary": summary_rows,
            "pairs": pair_rows,
        }
        changed = False
        for name, (copy, types, cols, merge) in st.merge.items():
            rows_of = staged[name]
            if name == "pairs" and not best_rows:
                # A ticker's first record changes the best-models document even without a
                # metric (with one, its first best entry was merged above): asked before
                # the pairs are merged.
                tickers = sorted({r["ticker"] for r in pair_rows})
                cur.execute(st.known_tickers, {"tickers": tickers})
                changed = changed or cur.fetchone()[0] != len(tickers)
            if not rows_of:
                continue
            _copy_rows(cur, copy, types, ([r[c] for c in cols] for r in rows_of))
            cur.execute(merge)
            if name.startswith("best"):
                changed = changed or (cur.rowcount or 0) > 0
    return ids, changed
