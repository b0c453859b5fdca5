"""The write transaction both engines share: a batch inserted and its aggregates merged, atomically.

Every insert runs in one transaction that also merges the batch's aggregates into the
derived tables with the upserts of :mod:`.upserts`, rows in key order so that concurrent
PostgreSQL writers take row locks in one order. What differs between engines is a handful
of hooks each engine's writer fills in: how a statement reaches the driver (SQLite talks to
``sqlite3``'s cursor directly; PostgreSQL goes through SQLAlchemy, one round trip each), how
record ids are allocated, and what else a record's labels need (SQLite links records to
labels in ``pl_record_labels``; PostgreSQL's GIN indexes need nothing).

:class:`Statements` compiles every statement once per store, from SQLAlchemy constructs, for
the driver's own parameter style: no SQL text is built per call, and none is ever parsed.
"""

from __future__ import annotations

import json
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..records.labels import collect, digest
from ..records.record import CORE_DIRECTIONS, CORE_METRICS
from . import schema as T
from .base import Inserted, ReadTx, WriteTx
from .reads import read_best, read_directions
from .upserts import AGGREGATES, LABELS, META, InsertFactory

if TYPE_CHECKING:
    from ..records.batch import Batch
    from ..records.kept_returns import KeptReturns

#: The columns of a record row, in the order the positional insert takes them.
RECORD_COLUMNS = ("id", "ticker", "model_name", "ts", *CORE_METRICS, "notes", "params", "tags")
_EXTRA_COLUMNS = ("record_id", "name", "value")
_LINK_COLUMNS = ("record_id", "label_id")
_RETURNS_COLUMNS = ("record_id", "n", "vals", "dates")


class Statements:
    """A store's write statements, compiled once: the upserts for rows given as dicts
    (``named``: the driver's named parameter style), the plain inserts for rows given as
    tuples (``positional``)."""

    def __init__(self, insert: InsertFactory, named: sa.Dialect, positional: sa.Dialect):
        self.insert = insert
        upserts = {**AGGREGATES, "labels": LABELS, "meta": META}
        self.upsert = {
            name: _compile(u.statement(insert), named, u.columns) for name, u in upserts.items()
        }
        self.insert_records = _positional(T.records, RECORD_COLUMNS, positional)
        self.insert_extra = _positional(T.extra, _EXTRA_COLUMNS, positional)
        self.insert_links = _positional(T.record_labels, _LINK_COLUMNS, positional)
        self.insert_returns = _positional(T.returns, _RETURNS_COLUMNS, positional)
        # What a copy keeps of the source's clears (:meth:`SQLWriteTx.keep_cleared`).
        kept = ((T.cleared_records, RECORD_COLUMNS), (T.cleared_extra, _EXTRA_COLUMNS),
                (T.cleared_returns, _RETURNS_COLUMNS))
        self.insert_cleared_records, self.insert_cleared_extra, self.insert_cleared_returns = (
            _positional(table, ("clear_id", *cols), positional) for table, cols in kept)
        # The reads a writer makes on every write (the mirrors' state, the last id).
        self.get_meta = _compile(sa.select(T.meta.c.value).where(T.meta.c.key == sa.bindparam("key")),
                                 named, ())
        last = sa.func.coalesce(sa.func.max(T.records.c.id), sa.literal_column("0"))
        self.max_id = _compile(sa.select(last), named, ())
        self.directions = _compile(sa.select(T.metric_defs.c.name, T.metric_defs.c.higher_is_better),
                                   named, ())


def _compile(stmt: Any, dialect: sa.Dialect, columns: Sequence[str]) -> str:
    return stmt.compile(dialect=dialect, column_keys=list(columns)).string


def _positional(table: sa.Table, columns: Sequence[str], dialect: sa.Dialect) -> str:
    compiled = sa.insert(table).compile(dialect=dialect, column_keys=list(columns))
    if tuple(compiled.positiontup or ()) != tuple(columns):  # the tuples' order is ours
        raise AssertionError(f"{table.name}: parameters in order {compiled.positiontup}, not {columns}")
    return compiled.string


class SQLReadTx(ReadTx):
    """Reads in one transaction on a SQLAlchemy connection: a snapshot, or a writer's view.

    ``guard``: the boundary of the store the snapshot belongs to, around each of its reads,
    so that a driver error is named after that store even when the read runs inside another
    store's write transaction (a copy)."""

    def __init__(self, conn: sa.Connection, guard: Callable[[], AbstractContextManager[None]] | None = None):
        self.conn = conn
        self._directions: dict[str, bool] | None = None
        self._guard = guard or nullcontext

    @property
    def directions(self) -> dict[str, bool]:
        """Metric directions as this transaction sees them (read once per transaction)."""
        if self._directions is None:
            with self._guard():
                self._directions = read_directions(self.conn)
        return self._directions

    def get_meta(self, key: str) -> str | None:
        with self._guard():
            return self.conn.execute(sa.select(T.meta.c.value).where(T.meta.c.key == key)).scalar()

    def best(self, ticker: str | None = None) -> dict[str, Any]:
        directions = self.directions
        with self._guard():
            return read_best(self.conn, ticker, directions)

    def last_id(self) -> int:
        with self._guard():
            return int(self.conn.execute(sa.select(sa.func.max(T.records.c.id))).scalar() or 0)

    def iter_batches(
        self, chunk: int = 20_000, after: int = 0, until: int | None = None
    ) -> Iterator[tuple[list[int], Batch]]:
        from ..records.batch import Batch

        last = after
        cols = ["id", "ts", "ticker", "model_name", *CORE_METRICS, "notes",
                "CAST(params AS TEXT)", "CAST(tags AS TEXT)"]
        upto = " AND id <= :until" if until is not None else ""
        select = sa.text(
            f"SELECT {', '.join(cols)} FROM pl_records WHERE id > :last{upto} ORDER BY id LIMIT :n"
        )
        bounds = {"until": until} if until is not None else {}
        extra = sa.text("SELECT record_id, name, value FROM pl_extra WHERE record_id >= :a "
                        "AND record_id <= :b ORDER BY record_id, name")
        while True:
            with self._guard():
                rows = self.conn.execute(select, {"last": last, "n": chunk, **bounds}).fetchall()
                if not rows:
                    return
                ids = [r[0] for r in rows]
                extras: dict[int, dict[str, float]] = {}
                for rid, name, value in self.conn.execute(extra, {"a": ids[0], "b": ids[-1]}):
                    extras.setdefault(rid, {})[name] = value
                kept = _kept_returns(self.conn, T.returns, ids)
            c = list(zip(*rows, strict=True))
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
                returns=[kept.get(rid) for rid in ids] if kept else None,
            )
            last = ids[-1]


    def iter_cleared(self, chunk: int = 50_000) -> Iterator[tuple[int, int, Batch]]:
        """Every kept (cleared) record, in the order they were cleared (clear by clear,
        each in its original insertion order), a batch at a time, each batch of one clear:
        ``(clear id, cleared_at, batch)``, ``cleared_at`` in UTC microseconds."""
        from ..records.batch import Batch

        cols = ["r.clear_id", "r.id", "r.ts", "r.ticker", "r.model_name", *(f"r.{m}" for m in CORE_METRICS),
                "r.notes", "CAST(r.params AS TEXT)", "CAST(r.tags AS TEXT)", "c.cleared_at"]
        select = sa.text(
            f"SELECT {', '.join(cols)} FROM pl_cleared_records r JOIN pl_cleared c ON c.id = r.clear_id "
            "WHERE r.clear_id > :c OR (r.clear_id = :c AND r.id > :i) ORDER BY r.clear_id, r.id LIMIT :n")
        extra = sa.text("SELECT record_id, name, value FROM pl_cleared_extra WHERE clear_id = :c "
                        "AND record_id >= :a AND record_id <= :b ORDER BY record_id, name")
        last = (0, 0)
        while True:
            with self._guard():
                rows = self.conn.execute(select, {"c": last[0], "i": last[1], "n": chunk}).fetchall()
            if not rows:
                return
            last = (rows[-1][0], rows[-1][1])
            for cid in dict.fromkeys(r[0] for r in rows):  # each clear's rows (ids ascend within one)
                part = [r for r in rows if r[0] == cid]
                ids = [r[1] for r in part]
                extras: dict[int, dict[str, float]] = {}
                with self._guard():
                    for rid, name, value in self.conn.execute(extra, {"c": cid, "a": ids[0], "b": ids[-1]}):
                        extras.setdefault(rid, {})[name] = value
                    kept = _kept_returns(self.conn, T.cleared_returns, ids, clear_id=cid)
                c = list(zip(*part, strict=True))
                k = 5 + len(CORE_METRICS)
                yield int(cid), int(part[0][-1]), Batch(
                    ticker=list(c[3]),
                    model_name=list(c[4]),
                    ts_us=list(c[2]),
                    core={m: list(c[5 + i]) for i, m in enumerate(CORE_METRICS)},
                    notes=list(c[k]),
                    metrics=[extras.get(rid, {}) for rid in ids],
                    params=[json.loads(p) if p else {} for p in c[k + 1]],
                    tags=[json.loads(t) if t else {} for t in c[k + 2]],
                    returns=[kept.get(rid) for rid in ids] if kept else None,
                )


class SQLWriteTx(SQLReadTx, WriteTx):
    """A write transaction on a connection the store opened with its write lock."""

    #: The tables a clear empties (an engine adds its own).
    CLEARED: tuple[sa.Table, ...] = (T.records, T.extra, T.best, T.summary, T.pairs, T.import_keys, T.labels,
                                     T.returns)
    #: The tables derived from the records (:meth:`recompute` rebuilds them; an engine adds its own).
    DERIVED: tuple[sa.Table, ...] = (T.best, T.summary, T.pairs, T.labels)

    def __init__(self, conn: sa.Connection, statements: Statements):
        SQLReadTx.__init__(self, conn)
        WriteTx.__init__(self)
        self._st = statements

    # ------------------------------------------------------------------ engine hooks

    @abstractmethod
    def _execute(self, sql: str, rows: Sequence[Any] | Mapping[str, Any]) -> int:
        """Run a compiled statement once (``rows`` a dict or a tuple) or for many rows (a
        list); returns the rows it changed."""

    @abstractmethod
    def _fetch(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run a compiled query; its rows."""

    @abstractmethod
    def _allocate_ids(self, n: int) -> list[int]:
        """``n`` new record ids, ascending."""

    def _insert_records(self, rows: list[tuple[Any, ...]], *, rebuild: bool) -> list[int] | None:
        """Insert record rows (their ids already in them); an engine that lets the database
        pick the id of a single row returns the ids here."""
        self._execute(self._st.insert_records, rows)
        return None

    def _link_labels(self, ids: Sequence[int], per_record: list[tuple[Any, ...]],
                     hashes: dict[Any, str], *, rebuild: bool) -> None:
        """Whatever else the records' labels need on this engine (nothing by default)."""

    # ------------------------------------------------------------------ the write

    @property
    def directions(self) -> dict[str, bool]:
        if self._directions is None:
            rows = self._fetch(self._st.directions, {})
            self._directions = {**CORE_DIRECTIONS, **{n: bool(h) for n, h in rows}}
        return self._directions

    def get_meta(self, key: str) -> str | None:
        rows = self._fetch(self._st.get_meta, {"key": key})
        return rows[0][0] if rows else None

    def last_id(self) -> int:
        return int(self._fetch(self._st.max_id, {})[0][0])

    def set_meta(self, key: str, value: str) -> None:
        self._execute(self._st.upsert["meta"], {"key": key, "value": value})

    def claim_keys(self, keys: Sequence[str]) -> set[str]:
        won: set[str] = set()
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 500):
            stmt = (
                self._st.insert(T.import_keys)
                .values([{"key": k} for k in unique[i: i + 500]])
                .on_conflict_do_nothing()
                .returning(T.import_keys.c.key)
            )
            won.update(r[0] for r in self.conn.execute(stmt))
        return won

    def attach_returns(self, kept: Mapping[int, KeptReturns]) -> list[int]:
        done: list[int] = []
        for rid, r in sorted(kept.items()):
            # one statement per record: only if it exists (a clear may have taken it since it
            # was read) and has none (the key's conflict: another writer attached one first)
            row = sa.select(sa.literal(int(rid), sa.BigInteger), sa.literal(r.n, sa.BigInteger),
                            sa.literal(r.values, sa.LargeBinary), sa.literal(r.dates, sa.LargeBinary)
                            ).where(sa.exists().where(T.records.c.id == int(rid)))
            stmt = (self._st.insert(T.returns).from_select(list(_RETURNS_COLUMNS), row)
                    .on_conflict_do_nothing().returning(T.returns.c.record_id))
            done += [int(v[0]) for v in self.conn.execute(stmt)]
        if done:
            self._bump_generation()  # returns_frame() and the dashboard's caches must see them
        return done

    def insert(self, batch: Batch) -> Inserted:
        ids = self._allocate_ids(len(batch))
        params_json = batch.json_or_none("params")
        tags_json = batch.json_or_none("tags")
        core_cols = [batch.core[m] for m in CORE_METRICS]
        rows = list(zip(ids, batch.ticker, batch.model_name, batch.ts_us, *core_cols, batch.notes,
                        params_json, tags_json, strict=True))
        # A bulk load at least as large as the table builds its indexes after the data (one
        # sort each) instead of a million index inserts.
        rebuild = len(rows) >= BULK_ROWS and ids[0] - 1 <= len(rows)
        ids = self._insert_records(rows, rebuild=rebuild) or ids
        extra_rows = [(ids[pos], name, value)
                      for pos, d in enumerate(batch.metrics) for name, value in d.items()]
        if extra_rows:
            self._execute(self._st.insert_extra, extra_rows)
        if batch.returns is not None:
            kept_rows = [(ids[pos], r.n, r.values, r.dates)
                         for pos, r in enumerate(batch.returns) if r is not None]
            if kept_rows:
                self._execute(self._st.insert_returns, kept_rows)
        self.add_labels(ids, batch.params, batch.tags, rebuild=rebuild)
        changed = self._merge(batch, ids)
        return Inserted(ids, changed)

    def _merge(self, batch: Batch, ids: Sequence[int]) -> bool:
        """Merge the batch's aggregates into the derived tables; True when the best-models
        document changed (a best entry, or a ticker's first record)."""
        dirs = self.directions
        best_rows, summary_rows, pair_rows = batch.aggregates(dirs, ids)
        changed = False
        for name, higher in (("best_hi", True), ("best_lo", False)):
            chunk = sorted((r for r in best_rows if dirs[r["metric"]] is higher), key=_best_key)
            if chunk:
                changed = self._execute(self._st.upsert[name], chunk) > 0 or changed
        if summary_rows:
            summary_rows.sort(key=lambda r: (r["ticker"], r["model_name"], r["metric"]))
            self._execute(self._st.upsert["summary"], summary_rows)
        pair_rows.sort(key=lambda r: (r["ticker"], r["model_name"]))
        if not changed and not best_rows:
            # A ticker's first record changes the best-models document even without a metric
            # (with one, its first best entry was inserted above: ``changed`` is already True).
            tickers = sorted({r["ticker"] for r in pair_rows})
            known = self.conn.execute(sa.select(sa.func.count(sa.distinct(T.pairs.c.ticker))).where(
                T.pairs.c.ticker.in_(tickers))).scalar()
            changed = known != len(tickers)
        self._execute(self._st.upsert["pairs"], pair_rows)
        return changed

    def add_labels(
        self,
        ids: Sequence[int],
        params: Sequence[Mapping[str, Any]],
        tags: Sequence[Mapping[str, str]],
        *,
        rebuild: bool = False,
    ) -> None:
        """Count the records' params and tags in ``pl_labels`` (and whatever else this
        engine needs to find records by them). A batch without params or tags costs nothing."""
        if not any(params) and not any(tags):
            return
        counts, per_record = collect(params, tags)
        hashes = {label: digest(label) for label in counts}
        rows = sorted(
            ({"h": hashes[lb], "kind": str(lb[0]), "key": lb[1], "value": lb[2], "n": n}
             for lb, n in counts.items()),
            key=lambda r: r["h"],  # one lock order for concurrent PostgreSQL writers
        )
        self._execute(self._st.upsert["labels"], rows)
        self._link_labels(ids, per_record, hashes, rebuild=rebuild)

    def register_metric(self, name: str, higher_is_better: bool) -> bool:
        """Register (or re-direct) a custom metric and recompute its best entries from
        history in this transaction. True when anything changed."""
        conn = self.conn
        current = conn.execute(
            sa.select(T.metric_defs.c.higher_is_better).where(T.metric_defs.c.name == name)
        ).scalar()
        if current is not None and bool(current) == higher_is_better:
            return False
        # One upsert, not DELETE + INSERT: concurrent transactions registering the same new
        # metric (syncs of several nodes at once) would both insert it, and the second
        # failed on the primary key. The second now waits for the first, then finds the
        # direction already there: nothing changed.
        defs = self._st.insert(T.metric_defs).values(name=name, higher_is_better=higher_is_better)
        defs = defs.on_conflict_do_update(
            index_elements=["name"], set_={"higher_is_better": defs.excluded.higher_is_better},
            where=T.metric_defs.c.higher_is_better != defs.excluded.higher_is_better,
        )
        if conn.execute(defs.returning(T.metric_defs.c.name)).first() is None:
            return False
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

    def recompute(self, chunk: int = 50_000) -> int:
        """Empty every derived table and compute it again from the records, by the code that
        keeps it on every insert (records in id order, as they were inserted); returns how
        many records were read."""
        for table in self.DERIVED:
            self.conn.execute(sa.delete(table))
        n = 0
        for ids, batch in self.iter_batches(chunk):
            self.add_labels(ids, batch.params, batch.tags)
            self._merge(batch, ids)
            n += len(ids)
        self._bump_generation()
        return n

    def clear(self) -> int:
        """Take every record out of the ledger, keeping them (and their custom metrics) in
        the cleared tables until purged; returns how many were kept."""
        conn = self.conn
        self._hold_records()
        n = int(conn.execute(sa.select(sa.func.count()).select_from(T.records)).scalar() or 0)
        if n:
            clear_id = conn.execute(
                sa.insert(T.cleared).values(cleared_at=time.time_ns() // 1000, n=n)
                .returning(T.cleared.c.id)
            ).scalar_one()
            cols = [c.name for c in T.records.c]
            conn.execute(sa.insert(T.cleared_records).from_select(
                ["clear_id", *cols],
                sa.select(sa.literal(clear_id, sa.BigInteger), *T.records.c).order_by(T.records.c.id)))
            conn.execute(sa.insert(T.cleared_extra).from_select(
                ["clear_id", "record_id", "name", "value"],
                sa.select(sa.literal(clear_id, sa.BigInteger), *T.extra.c)))
            conn.execute(sa.insert(T.cleared_returns).from_select(
                ["clear_id", "record_id", "n", "vals", "dates"],
                sa.select(sa.literal(clear_id, sa.BigInteger), *T.returns.c)))
        for table in self.CLEARED:
            conn.execute(sa.delete(table))
        self._bump_generation()
        return n

    def cleared_batches(self, chunk: int = 50_000) -> Iterator[Batch]:
        """Every kept (cleared) record, a batch at a time, in the order they were cleared
        (clear by clear, each in its original insertion order)."""
        return (batch for _clear, _cleared_at, batch in self.iter_cleared(chunk))

    def keep_cleared(self, cleared_at: int, batches: Iterable[Batch]) -> int:
        """Keep ``batches`` as the records of one more clear made at ``cleared_at`` (UTC
        microseconds), as :meth:`clear` keeps them; returns how many. A copy carries a
        ledger's cleared records this way, so the copy can still restore or purge them."""
        rows_n = 0
        clear_id: int | None = None
        for batch in batches:
            if not len(batch):
                continue
            if clear_id is None:
                clear_id = int(self.conn.execute(
                    sa.insert(T.cleared).values(cleared_at=cleared_at, n=0).returning(T.cleared.c.id)
                ).scalar_one())
            ids = range(rows_n + 1, rows_n + len(batch) + 1)
            core_cols = [batch.core[m] for m in CORE_METRICS]
            self._execute(self._st.insert_cleared_records, list(zip(
                [clear_id] * len(batch), ids, batch.ticker, batch.model_name, batch.ts_us, *core_cols,
                batch.notes, batch.json_or_none("params"), batch.json_or_none("tags"), strict=True)))
            extra = [(clear_id, rid, name, value)
                     for rid, d in zip(ids, batch.metrics, strict=True) for name, value in d.items()]
            if extra:
                self._execute(self._st.insert_cleared_extra, extra)
            if batch.returns is not None:
                kept = [(clear_id, rid, r.n, r.values, r.dates)
                        for rid, r in zip(ids, batch.returns, strict=True) if r is not None]
                if kept:
                    self._execute(self._st.insert_cleared_returns, kept)
            rows_n += len(batch)
        if clear_id is not None:
            self.conn.execute(sa.update(T.cleared).where(T.cleared.c.id == clear_id).values(n=rows_n))
            self._bump_generation()
        return rows_n

    def forget_cleared(self, before_us: int | None = None) -> int:
        """Delete, for good, the records of every clear made before ``before_us`` (UTC
        microseconds; None: every clear); returns how many records were deleted."""
        conn = self.conn
        stmt = sa.select(T.cleared.c.id, T.cleared.c.n)
        if before_us is not None:
            stmt = stmt.where(T.cleared.c.cleared_at < before_us)
        found = conn.execute(stmt).fetchall()
        if not found:
            return 0
        ids = [r[0] for r in found]
        for i in range(0, len(ids), 500):
            part = ids[i: i + 500]
            conn.execute(sa.delete(T.cleared_extra).where(T.cleared_extra.c.clear_id.in_(part)))
            conn.execute(sa.delete(T.cleared_returns).where(T.cleared_returns.c.clear_id.in_(part)))
            conn.execute(sa.delete(T.cleared_records).where(T.cleared_records.c.clear_id.in_(part)))
            conn.execute(sa.delete(T.cleared).where(T.cleared.c.id.in_(part)))
        self._bump_generation()
        return int(sum(r[1] for r in found))

    def _hold_records(self) -> None:
        """Keep other writers from adding records until this transaction ends: a clear
        copies every record into the cleared tables, then deletes them all, and a record
        committed in between would be deleted without being kept. SQLite's write lock
        already excludes every other writer; an engine whose writers run concurrently
        overrides this."""

    def _bump_generation(self) -> None:
        """Change ``stats()["state"]`` for a change the record count and ids do not show."""
        gen = int(self.get_meta("generation") or 0) + 1
        self.set_meta("generation", str(gen))


def _kept_returns(conn: sa.Connection, table: sa.Table, ids: Sequence[int],
                  clear_id: int | None = None) -> dict[int, KeptReturns]:
    """The return series kept for the records whose ids span ``ids[0]..ids[-1]`` (in
    ``table``: ``pl_returns``, or ``pl_cleared_returns`` of clear ``clear_id``), by record id."""
    from ..records.kept_returns import KeptReturns

    stmt = sa.select(table.c.record_id, table.c.n, table.c.vals, table.c.dates).where(
        table.c.record_id >= ids[0], table.c.record_id <= ids[-1])
    if clear_id is not None:
        stmt = stmt.where(table.c.clear_id == clear_id)
    return {rid: KeptReturns(int(n), bytes(v), None if d is None else bytes(d))
            for rid, n, v, d in conn.execute(stmt)}


#: From this many rows, a bulk load into a table no larger builds its indexes afterwards.
BULK_ROWS = 50_000


def _best_key(r: Mapping[str, Any]) -> tuple[str, str]:
    return (r["ticker"], r["metric"])
