"""What both SQL stores share: the boundary every call crosses, and every read they spell alike.

:class:`SQLStore` is the base of :class:`~.sqlite.store.SQLiteStore` and
:class:`~.postgres.store.PostgresStore`. It holds:

* **the boundary**: every read runs in :meth:`SQLStore._read` and every write transaction in
  :meth:`SQLStore.writing`; a driver error escaping either becomes a perfledger error there
  (:mod:`.errors`, with the engine's ``_cause`` hook), and a read that must be run again
  (:class:`~.base.ReadAgain`) is run again there, so no read repeats either concern;
* **the reads both engines spell alike**: directions, meta, tickers, models, best models,
  stats, history and its count, the summarised leaderboard. History, best models, tickers
  and the leaderboard read the derived tables or an index, never a scan of all records.
  Large results come as Arrow through the engine's columnar pool; without its driver, or
  when it fails, through the row path (SQLAlchemy), whose error is the one mapped.

Each engine fills in its hooks: its write transaction, its snapshot, its params/tags
filters, grouped leaderboards, label listings and latest-values SQL, and what its driver's
error codes mean. No other module of perfledger tells the engines apart.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from ..errors import PerfLedgerError, ReadOnlyLedgerError, StorageError
from ..location import describe_store
from ..records.record import CORE_DIRECTIONS, CORE_METRICS
from ..records.timestamps import format_ts
from . import schema as T
from .absent import EMPTY_READ, empty_history, empty_tails
from .base import (
    HistoryQuery,
    HistoryRows,
    LabelRow,
    PairRow,
    ReadAgain,
    ReadTx,
    StatRow,
    Store,
    TailQuery,
)
from .columnar import ArrowPool, ColumnarReadFailed, typed
from .errors import Cause, boundary, perfledger_error
from .migrations import ensure_schema, read_version
from .queries import Source, name_clauses, plain_clauses, window_clauses
from .reads import read_best, read_directions
from .survey import survey
from .writes import SQLReadTx, SQLWriteTx

if TYPE_CHECKING:
    import pyarrow as pa

    from ..records.kept_returns import KeptReturns
    from ..records.labels import Grouping
    from .migrations import EngineSteps

log = logging.getLogger("perfledger")
R = TypeVar("R")
#: How often a read that overlapped a change of its file is run again.
_READ_ATTEMPTS = 4


class SQLStore(Store):
    """A ledger in a SQL database reached through SQLAlchemy (one subclass per engine)."""

    #: The engine's own migration steps (see :mod:`.migrations`).
    STEPS: EngineSteps
    #: The tables this engine's stores have.
    TABLES: tuple[sa.Table, ...] = T.COMMON_TABLES
    #: Whose rights a read-only error names.
    who = "this user"
    #: What an error of a database that does not exist says (an engine with a server sets it).
    missing_database = ""

    def __init__(self, url: sa.URL, engine: sa.Engine, arrow: ArrowPool | None, *, repair: bool = False):
        self.url = url
        self.where = describe_store(url)
        self.engine = engine
        self._arrow = arrow
        #: Threads of this process making the ledger at once take turns (the engine's lock
        #: between processes is a file lock, which every thread of one process holds).
        self._creating = threading.Lock()
        with self._boundary(write=False, opening=True):
            self._absent = False
            if not self._exists():
                # Nothing there: not even a connection is opened (SQLite's would create the
                # file). Reads answer as an empty ledger; the first write creates it.
                self._absent = True
                if repair:
                    self.repaired = ["no ledger here yet: nothing to repair (the first write creates it)"]
                return
            if repair:
                self._repair()
                return
            #: No ledger in the database yet: reads answer "empty" and create nothing; the
            #: first write creates the schema (:meth:`_absent_now`, :meth:`writing`).
            self._absent = not ensure_schema(engine, self.where, self.TABLES, self.STEPS,
                                             read_only=self.read_only_reason is not None, create=False)

    def _repair(self) -> None:
        """Make a damaged schema whole (:mod:`.repair`), then recompute every derived table
        from the records, in one write transaction."""
        from .repair import repair_schema

        if self.read_only_reason is not None:
            raise ReadOnlyLedgerError(self.read_only_reason)
        with self.engine.connect() as conn:
            nothing = survey(conn).empty
            conn.rollback()
        if nothing:  # no ledger here: nothing to repair, and a repair creates none
            self._absent = True
            self.repaired = ["no ledger here yet: nothing to repair (the first write creates it)"]
            return
        done = repair_schema(self.engine, self.where, self.TABLES, self.STEPS, before_upgrade=True)
        ensure_schema(self.engine, self.where, self.TABLES, self.STEPS, check=False)
        done += repair_schema(self.engine, self.where, self.TABLES, self.STEPS, before_upgrade=False)
        with self.writing() as tx:
            n = tx.recompute()
        self.repaired = [*done, f"recomputed the derived tables from {n} record(s)"]

    # ------------------------------------------------------------------ a ledger not created yet

    @property
    def absent(self) -> bool:
        """Whether the database holds no ledger yet (looked at again: another process's
        first write may have created it since)."""
        return self._absent and self._absent_now()

    def _exists(self) -> bool:
        """Whether the database itself exists (an engine whose database is a file that is
        not there yet says no, and nothing may open it: a read must leave nothing behind)."""
        return True

    def _make(self) -> None:
        """Create the database itself before the first write's schema (an engine whose
        database is a file creates it)."""

    def create(self) -> None:
        """Create the ledger now, as the first write would (nothing when it exists)."""
        if self._absent and self.absent:
            self._create()

    def _absent_now(self) -> bool:
        """A read never creates a ledger: while the database holds none, reads answer as an
        empty ledger does. Each such read looks again; once another process created the
        ledger, it is checked (or upgraded) as an open does, and read."""
        if not self._exists() or self._read(read_version) is None:
            return True
        with self._boundary(write=False, opening=True):
            ensure_schema(self.engine, self.where, self.TABLES, self.STEPS,
                          read_only=self.read_only_reason is not None, create=False)
        self._absent = False
        return False

    def _create(self) -> None:
        """The first write: the schema is created (under the engine's lock; another
        process's first write may have done it meanwhile), by one thread of this process at a
        time (another thread's may have done it meanwhile too)."""
        with self._creating:
            if not self._absent:
                return
            with self._boundary(write=False, opening=True):
                self._make()
                ensure_schema(self.engine, self.where, self.TABLES, self.STEPS)
            self._absent = False

    # ------------------------------------------------------------------ engine hooks

    @abstractmethod
    def _cause(self, exc: BaseException) -> Cause | None:
        """What a driver error means (None: not a driver error of this engine)."""

    @abstractmethod
    def _transaction(self, single: bool = False) -> AbstractContextManager[SQLWriteTx]:
        """This engine's write transaction, its hooks run (``aborted``/``committed``);
        ``single`` as :meth:`writing` says (an engine may ignore it)."""

    @abstractmethod
    def _snapshot_connection(self, conn: sa.Connection) -> sa.Connection:
        """``conn`` set up for a consistent read-only snapshot."""

    @abstractmethod
    def _label_source(self, conn: sa.Connection, query: HistoryQuery, params: dict[str, Any]
                      ) -> tuple[str, list[str]] | None:
        """The FROM and clauses of the query's params/tags filters (None: nothing matches)."""

    @abstractmethod
    def _grouped_stats(self, conn: sa.Connection, src: Source, by: Grouping, ticker: str | None
                       ) -> tuple[list[Any], list[Any]]:
        """Leaderboard statistics of the selected records, grouped in the database."""

    @abstractmethod
    def _label_rows(self, conn: sa.Connection, ticker: str | None) -> list[LabelRow]: ...

    @abstractmethod
    def _tails_sql(self, query: TailQuery, where: str, inner: str, params: dict[str, Any]) -> str: ...

    def _row_types(self, result: sa.CursorResult[Any]) -> dict[str, pa.DataType]:
        """Arrow types of a row-path result's columns, where the engine knows them."""
        return {}

    @contextmanager
    def _checked(self, conn: sa.Connection) -> Iterator[None]:
        """Around every read transaction (SQLite checks a file opened immutable)."""
        yield

    # ------------------------------------------------------------------ the boundary

    def _boundary(self, *, write: bool, opening: bool = False) -> AbstractContextManager[None]:
        return boundary(self._cause, self.where, write=write, opening=opening, who=self.who,
                        missing=self.missing_database)

    def _again(self, fn: Callable[[], R]) -> R:
        """Run a read, driver errors mapped, and again when it overlapped a change it could
        not see through (:class:`~.base.ReadAgain`, or a driver error the engine says a
        retry cures, :meth:`_retryable`), a little later each time. When every attempt
        overlapped one, a :class:`StorageError` says so."""
        for attempt in range(_READ_ATTEMPTS):
            last = attempt == _READ_ATTEMPTS - 1
            try:
                with self._boundary(write=False):
                    try:
                        return fn()
                    except Exception as exc:
                        if not last and not isinstance(exc, ReadAgain) and self._retryable(exc):
                            raise ReadAgain(str(exc)) from exc
                        raise
            except ReadAgain as exc:
                if last:
                    raise StorageError(
                        f"{self.where}: the database changed under each of {_READ_ATTEMPTS} attempts "
                        f"to read it ({exc}); try again", cause="busy") from exc
                time.sleep(0.02 * (attempt + 1))
        raise AssertionError("unreachable")

    def _retryable(self, exc: BaseException) -> bool:
        """Whether a driver error during a read means only that the read overlapped a change
        (an engine hook; no by default)."""
        return False

    def _read(self, fn: Callable[[sa.Connection], R]) -> R:
        """:meth:`_again` with ``fn`` given a read connection, in a transaction."""

        def run() -> R:
            with self.reading() as conn:
                return fn(conn)

        return self._again(run)

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn, conn.begin(), self._checked(conn):
            yield conn

    @contextmanager
    def writing(self, single: bool = False) -> Iterator[SQLWriteTx]:
        if self.read_only_reason is not None:
            raise ReadOnlyLedgerError(self.read_only_reason)
        if self._absent:
            self._create()
        # The boundary spelled out, not as one more context manager: this runs for every log().
        try:
            with self._transaction(single) as tx:
                yield tx
        except PerfLedgerError:
            raise
        except Exception as exc:
            cause = self._cause(exc)
            if cause is None:
                raise
            raise perfledger_error(cause, self.where, exc, write=True, who=self.who,
                                   missing=self.missing_database) from exc

    @contextmanager
    def snapshot(self) -> Iterator[ReadTx]:
        if self.absent:
            yield EMPTY_READ
            return
        with self._boundary(write=False), self.engine.connect() as conn:
            snap = self._snapshot_connection(conn)
            with snap.begin(), self._checked(snap):
                # Its reads map their own errors: a copy reads from a snapshot inside the
                # target's write transaction, whose boundary would otherwise name the target.
                yield SQLReadTx(snap, guard=lambda: self._boundary(write=False))

    def dispose(self) -> None:
        self.engine.dispose()
        if self._arrow is not None:
            self._arrow.close()

    def after_fork(self) -> None:
        self.engine.dispose(close=False)
        if self._arrow is not None:
            self._arrow.after_fork()

    # ------------------------------------------------------------------ reads

    def directions(self) -> dict[str, bool]:
        if self.absent:
            return dict(CORE_DIRECTIONS)
        return self._read(read_directions)

    def get_meta(self, key: str) -> str | None:
        if self.absent:
            return None
        return self._read(lambda c: c.execute(sa.select(T.meta.c.value).where(T.meta.c.key == key)).scalar())

    def last_id(self) -> int:
        if self.absent:
            return 0
        return self._read(lambda c: int(c.execute(sa.select(sa.func.max(T.records.c.id))).scalar() or 0))

    def known_keys(self, keys: Sequence[str]) -> set[str]:
        if self.absent:
            return set()
        unique = list(dict.fromkeys(keys))

        def read(conn: sa.Connection) -> set[str]:
            found: set[str] = set()
            for i in range(0, len(unique), 500):
                stmt = sa.select(T.import_keys.c.key).where(T.import_keys.c.key.in_(unique[i: i + 500]))
                found.update(r[0] for r in conn.execute(stmt))
            return found

        return self._read(read) if unique else set()

    def tickers(self) -> list[str]:
        if self.absent:
            return []
        stmt = sa.select(T.pairs.c.ticker).distinct().order_by(T.pairs.c.ticker)
        return self._read(lambda c: [r[0] for r in c.execute(stmt)])

    def models(self, ticker: str | None = None) -> list[str]:
        if self.absent:
            return []
        stmt = sa.select(T.pairs.c.model_name).distinct().order_by(T.pairs.c.model_name)
        if ticker is not None:
            stmt = stmt.where(T.pairs.c.ticker == ticker)
        return self._read(lambda c: [r[0] for r in c.execute(stmt)])

    def best(self, ticker: str | None = None) -> dict[str, Any]:
        if self.absent:
            return {}
        return self._read(lambda c: read_best(c, ticker))

    def labels(self, ticker: str | None = None) -> list[LabelRow]:
        if self.absent:
            return []
        return self._read(lambda c: self._label_rows(c, ticker))

    def stats(self) -> dict[str, Any]:
        if self.absent:
            return {"records": 0, "tickers": 0, "models": 0, "cleared": 0, "last_timestamp": None,
                    "state": "0:0:0"}

        def read(conn: sa.Connection) -> dict[str, Any]:
            row = conn.execute(sa.select(
                sa.func.coalesce(sa.func.sum(T.pairs.c.n), 0),
                sa.func.count(sa.distinct(T.pairs.c.ticker)),
                sa.func.count(sa.distinct(T.pairs.c.model_name)),
                sa.func.max(T.pairs.c.last_ts),
            )).one()
            max_id = conn.execute(sa.select(sa.func.max(T.records.c.id))).scalar()
            gen = conn.execute(sa.select(T.meta.c.value).where(T.meta.c.key == "generation")).scalar()
            kept = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(T.cleared.c.n), 0))).scalar()
            return {
                "records": int(row[0]),
                "tickers": int(row[1]),
                "models": int(row[2]),
                "cleared": int(kept or 0),
                "last_timestamp": format_ts(row[3]) if row[3] is not None else None,
                "state": f"{gen or 0}:{row[0]}:{max_id or 0}",
            }

        return self._read(read)

    def schema_version(self) -> int | None:
        if self.absent:
            return None
        return self._read(read_version)

    def _source(self, conn: sa.Connection, query: HistoryQuery) -> Source:
        """Where the records ``query`` selects come from."""
        params: dict[str, Any] = {}
        clauses = plain_clauses(query, params)
        from_ = "pl_records r"
        if query.params or query.tags:
            found = self._label_source(conn, query, params)
            if found is None:
                return Source.nothing()
            from_, label_clauses = found
            clauses += label_clauses
        return Source(from_, " AND ".join(clauses) or "1=1", params)

    @staticmethod
    def _has_extras(conn: sa.Connection) -> bool:
        """Whether the ledger ever stored a custom metric (reads then also fetch them)."""
        return conn.execute(sa.select(T.extra.c.record_id).limit(1)).first() is not None

    def history(self, query: HistoryQuery) -> HistoryRows:
        if self.absent:
            return empty_history(query)
        return self._again(lambda: self._history(query))

    def history_plain(self, query: HistoryQuery, has_extras: bool) -> HistoryRows:
        """:meth:`history` of a query without params/tags filters, when the caller already
        knows whether the ledger holds custom metrics (the SQLite single-record path asks its
        own connection for ~20 µs). Why: the rest of :meth:`history` before the read itself
        (a SQLAlchemy connection and transaction to build the source and ask that) cost
        ~1 ms, more than reading a pair's few hundred rows."""
        if query.params or query.tags:
            raise ValueError("history_plain answers queries without params/tags filters")
        if self.absent:
            return empty_history(query)
        params: dict[str, Any] = {}
        src = Source(where=" AND ".join(plain_clauses(query, params)) or "1=1", params=params)
        return self._again(lambda: self._history_of(query, src, has_extras))

    def _history(self, query: HistoryQuery) -> HistoryRows:
        src, has_extras = self._read(lambda c: (self._source(c, query), self._has_extras(c)))
        return self._history_of(query, src, has_extras)

    def _history_of(self, query: HistoryQuery, src: Source, has_extras: bool) -> HistoryRows:
        """The records (and custom metrics) ``src`` selects, as :meth:`history` gives them."""
        limit = f" LIMIT {int(query.limit)}" if query.limit else ""
        order = "ORDER BY r.ts DESC, r.id DESC" if query.limit else "ORDER BY r.ts, r.id"
        # As JSON text on every engine (PostgreSQL keeps them as JSONB; its driver would
        # otherwise hand back dicts).
        # With the meta: the record's id and whether it kept a return series (pl_returns).
        meta_cols = (
            ", CAST(r.params AS TEXT) AS params, CAST(r.tags AS TEXT) AS tags, CASE WHEN EXISTS "
            "(SELECT 1 FROM pl_returns k WHERE k.record_id = r.id) THEN 1 ELSE 0 END AS has_returns"
            if query.include_meta else ""
        )
        # One ticker asked for: every row holds it, so it is not fetched row by row.
        ticker_col = "" if len(query.tickers) == 1 else "r.ticker, "
        # Only the columns asked for (a chart of one metric skips the others and the notes).
        core, custom = query.core_columns(), query.custom_columns()
        has_extras = has_extras and custom != ()
        # Record ids line custom metrics up with their rows (and are shown with the meta).
        id_col = "r.id, " if has_extras or query.include_meta else ""
        values = "".join(f", r.{m}" for m in core) + (", r.notes" if query.with_notes() else "")
        sql = (
            f"SELECT {id_col}r.ts, {ticker_col}r.model_name{values}{meta_cols} "
            f"FROM {src.from_} WHERE {src.where} {order}{limit}"
        )
        import pyarrow as pa  # here, not at import: a write or a small read needs no Arrow

        # History's metric columns are float64 even when every value read is NULL.
        metric_types = {m: pa.float64() for m in core}
        meta_types = {"id": pa.int64(), "has_returns": pa.int64()}
        types = {**metric_types, **meta_types} if query.include_meta else metric_types
        records = self._table(sql, src.params, types)
        extras = None
        if records.num_rows and has_extras:
            named = ""
            if custom is not None:  # only the custom metrics asked for
                params = dict(src.params)
                for i, name in enumerate(custom):
                    params[f"column{i}"] = name
                named = f" AND e.name IN ({', '.join(f':column{i}' for i in range(len(custom)))})"
                src = Source(src.from_, src.where, params)
            if query.limit:
                # Only the custom metrics of the rows kept: the limit runs in the database.
                extra_sql = (f"SELECT e.record_id, e.name, e.value FROM pl_extra e WHERE e.record_id IN "
                             f"(SELECT r.id FROM {src.from_} WHERE {src.where} {order}{limit}){named}")
            else:
                extra_sql = (f"SELECT e.record_id, e.name, e.value FROM {src.from_} "
                             f"JOIN pl_extra e ON e.record_id = r.id WHERE {src.where}{named}")
            extras = self._table(extra_sql, src.params, {"value": pa.float64()})
        return HistoryRows(records, extras)

    def returns(self, ids: Sequence[int]) -> dict[int, KeptReturns]:
        if self.absent or not ids:
            return {}
        from ..records.kept_returns import KeptReturns

        t = T.returns
        wanted = sorted({int(i) for i in ids})

        def read(conn: sa.Connection) -> dict[int, KeptReturns]:
            out: dict[int, KeptReturns] = {}
            for k in range(0, len(wanted), 500):
                stmt = sa.select(t.c.record_id, t.c.n, t.c.vals, t.c.dates).where(
                    t.c.record_id.in_(wanted[k: k + 500]))
                for rid, n, v, d in conn.execute(stmt):
                    out[int(rid)] = KeptReturns(int(n), bytes(v), None if d is None else bytes(d))
            return out

        return self._read(read)

    def returns_matching(self, query: HistoryQuery) -> list[tuple[int, str, float | None, KeptReturns]]:
        if self.absent:
            return []
        from ..records.kept_returns import PERIODS_METRIC, KeptReturns

        def read(conn: sa.Connection) -> list[tuple[int, str, float | None, KeptReturns]]:
            src = self._source(conn, query)
            if src.empty:
                return []
            sql = (f"SELECT r.id, r.model_name, e.value, k.n, k.vals, k.dates FROM {src.from_} "
                   "JOIN pl_returns k ON k.record_id = r.id "
                   "LEFT JOIN pl_extra e ON e.record_id = r.id AND e.name = :pl_periods_name "
                   f"WHERE {src.where} ORDER BY r.ts, r.id")
            return [(int(rid), model, None if per is None else float(per),
                     KeptReturns(int(n), bytes(v), None if d is None else bytes(d)))
                    for rid, model, per, n, v, d in conn.execute(
                        sa.text(sql), {**src.params, "pl_periods_name": PERIODS_METRIC})]

        return self._read(read)

    def any_returns(self) -> bool:
        if self.absent:
            return False
        return self._read(lambda c: c.execute(sa.select(T.returns.c.record_id).limit(1)).first() is not None)

    def count(self, query: HistoryQuery) -> int:
        if self.absent:
            return 0

        def read(conn: sa.Connection) -> int:
            src = self._source(conn, query)
            if src.empty:
                return 0
            sql = f"SELECT COUNT(*) FROM {src.from_} WHERE {src.where}"
            return int(conn.execute(sa.text(sql), src.params).scalar() or 0)

        return self._read(read)

    def _table(self, sql: str, params: dict[str, Any],
               types: dict[str, pa.DataType] | None = None) -> pa.Table:
        """Run a read query into an Arrow table: columnar through the engine's ADBC pool (no
        Python object per value); without it, or when it fails, through the row path.
        Columns named in ``types`` have that type whatever values (or only NULLs) they hold."""
        if self._arrow is not None:
            try:
                return self._arrow.read(sql, params, types)
            except ColumnarReadFailed as exc:
                log.debug("columnar read failed (%s); reading through the row path", exc)
            except ImportError as exc:  # the driver is installed but does not load
                log.debug("columnar reads unavailable (%s); using the row path", exc)
                self._arrow = None

        import pyarrow as pa

        def read(conn: sa.Connection) -> pa.Table:
            result = conn.execute(sa.text(sql), params)
            names = list(result.keys())
            known = {**self._row_types(result), **(types or {})}
            rows = result.fetchall()
            columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
            return pa.table({n: pa.array(list(c), known.get(n)) for n, c in zip(names, columns, strict=True)})

        table = self._read(read)
        return typed(table, types) if types else table

    def leaderboard_stats(
        self, query: HistoryQuery, by: Grouping = None
    ) -> tuple[list[StatRow], list[PairRow]]:
        summarised = (by is None and query.since_us is None and query.until_us is None
                      and not (query.params or query.tags or query.models or query.at_least
                               or query.at_most) and len(query.tickers) <= 1)
        if self.absent:
            return [], []

        def read(conn: sa.Connection) -> tuple[list[StatRow], list[PairRow]]:
            if not summarised:
                src = self._source(conn, query)
                if src.empty:
                    return [], []
                one = query.tickers[0] if len(query.tickers) == 1 else None
                return self._grouped_stats(conn, src, by, one)
            ticker = query.tickers[0] if query.tickers else None
            params = {"ticker": ticker}
            where = " WHERE ticker = :ticker" if ticker is not None else ""
            long = conn.execute(sa.text(
                "SELECT ticker, model_name, metric, n, mean, m2, min, max, last_value "
                f"FROM pl_summary{where}"), params).fetchall()
            pairs = conn.execute(sa.text(f"SELECT ticker, model_name, n FROM pl_pairs{where}"),
                                 params).fetchall()
            return list(long), list(pairs)

        return self._read(read)

    def metric_tails(self, query: TailQuery) -> pa.Table:
        """Each pair's newest values of one metric, read off the (model_name, ticker, ts, id)
        index newest first and stopped after ``keep``. Pairs come from ``pl_summary`` (already
        counted per metric). A ``ROW_NUMBER()`` window would number every row of every pair
        before keeping a few: measured 3.5-7 s on SQLite at a million records, against about
        0.4 s this way."""
        if not query.custom and query.metric not in CORE_METRICS:
            raise ValueError(f"{query.metric!r} is not a core metric; set custom=True")
        if self.absent:
            return empty_tails()
        params: dict[str, Any] = {"metric": query.metric, "min_count": int(query.min_count)}
        outer = ["s.metric = :metric", "s.n >= :min_count",
                 *name_clauses("s", query.tickers, query.models, params)]
        inner = ["q.model_name = s.model_name", "q.ticker = s.ticker",
                 *window_clauses("q", query.since_us, query.until_us, params)]
        if not query.custom:
            inner.append(f"q.{query.metric} IS NOT NULL")
        if query.keep is not None:
            params["keep"] = int(query.keep)
        sql = self._tails_sql(query, " AND ".join(outer), " AND ".join(inner), params)
        return self._again(lambda: self._table(sql, params))
