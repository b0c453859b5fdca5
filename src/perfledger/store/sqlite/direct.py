"""The SQLite single-record path: one ``log()``, ``best()``, ``tickers()`` on stdlib ``sqlite3``.

Why: ``import sqlalchemy`` alone takes longer than a whole ``sqlite-utils insert`` process,
and a ``log()`` through the generic store crossed ~60 Python-level steps of SQLAlchemy
bookkeeping, batch machinery and compiled-statement lookups for five statements. A command
line that starts like a small tool, and a ``log()`` that costs little more than its
durability, need a path that never imports SQLAlchemy and runs the statements straight.

What it is: :class:`DirectStore` opens the ledger's file with ``sqlite3`` (the same pragmas
as the engine's, :mod:`.pragmas`; the same lock bookkeeping, :mod:`.locks`), reads the schema
version and the tables' columns, and answers the single-record questions itself: a
``log()`` (:meth:`DirectStore.writing_one`: the record, its custom metrics, kept returns and
labels, then the batch's aggregates merged by the same upserts, text compiled by SQLAlchemy
ahead of time, :mod:`.statements`), ``best``, ``tickers``, ``models``, ``directions``, plain history reads
(:mod:`.direct_reads`: ``history_rows``, ``count``, ``latest``), and
the mirrors' ``get_meta``/``last_id``. Every other call goes to the full
:class:`~.store.SQLiteStore`, opened (and SQLAlchemy imported) the first time one is made.

What it is not: anything unusual. :func:`open_direct` returns None, and the caller opens the
full store, for a file that does not exist or is empty, another schema version (the full
store migrates), tables or columns that differ (it reports the damage), a ledger this
process may only read, or a file ``sqlite3`` cannot read. Inside a write, a body that needs
more than one record's insert (a repair of the mirror files, an adoption, a catch-up of
records stored without the mirrors) raises :class:`~..base.RunAgain`: the transaction rolls
back, this store writes through the full one from then on, and the caller runs the write
again. The rules are not repeated here: validation, the batch's aggregates (best candidates,
running statistics), the labels' digests, the best-models document's shape and the error
codes' meaning are the modules both paths call.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ...errors import PerfLedgerError
from ...records.labels import collect, digest
from ...records.record import CORE_DIRECTIONS, CORE_METRICS
from ..base import Inserted, RunAgain, Store, WriteTx
from ..best_document import best_document
from ..errors import Cause, boundary, perfledger_error
from . import direct_reads, locks
from . import statements as S
from .access import read_only_reason
from .causes import sqlite_cause
from .identity import file_identity
from .pragmas import BUSY_TIMEOUT_S, configure

if TYPE_CHECKING:
    from ...records.batch import Batch

_IN_CHUNK = 500


def open_direct(path: Path, *, ledger: str, guarded: Sequence[Path], full: Callable[[], Store]
                ) -> DirectStore | None:
    """The single-record path on the ledger file ``path``, or None when anything is unusual
    (see the module doc): the caller then opens the full store, which handles it.
    ``full`` opens that store when a call needs it."""
    conn = _probe(path, ledger, guarded)
    return DirectStore(path, conn, full) if conn is not None else None


def pending(path: Path, *, ledger: str, guarded: Sequence[Path], full: Store) -> DirectStore:
    """The full store ``full`` of a ledger :func:`open_direct` refused (a new directory, an
    upgrade), behind a single-record path that looks again at the next ``log()``: once the
    file is a whole ledger of this version (the full store created or upgraded it), the
    short path is taken from then on."""
    store = DirectStore(path, None, lambda: full)
    store._full = full
    store._waiting = (ledger, tuple(guarded))
    return store


def _probe(path: Path, ledger: str, guarded: Sequence[Path]) -> sqlite3.Connection | None:
    """A configured connection to ``path`` if it is a whole ledger of this schema version
    that this process may write, else None (and nothing written to the file)."""
    try:
        if path.stat().st_size == 0 or read_only_reason(ledger, path, guarded) is not None:
            return None
    except (OSError, PerfLedgerError):
        return None
    held = locks.key(path)
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False,
                               factory=locks.EngineConnection)
    except sqlite3.Error:
        return None
    locks.engine_opened(held, conn)  # type: ignore[arg-type]
    try:
        conn.isolation_level = None
        # Reads first: a file that is not a whole ledger of this version is left as it is.
        version = conn.execute(S.GET_META, {"key": "schema_version"}).fetchone()
        columns: dict[str, set[str]] = {}
        for table, column in conn.execute(S.SCHEMA_COLUMNS):
            columns.setdefault(table, set()).add(column)
        whole = (version is not None and version[0] == str(S.SCHEMA_VERSION)
                 and all(columns.get(t, set()) >= cols for t, cols in S.TABLE_COLUMNS.items()))
        if whole:
            configure(conn)
            return conn
    except sqlite3.Error:
        pass
    _close(conn)
    return None


def _close(conn: sqlite3.Connection) -> None:
    locks.engine_closing(conn)  # type: ignore[arg-type]
    conn.close()


def schema_altered(path: Path) -> bool:
    """Whether a table or column this release's schema has is missing from the file (what
    a generic ``SQLITE_ERROR`` means then: the ledger's tables are missing or altered)."""
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as con:
            for table, cols in S.TABLE_COLUMNS.items():
                have = {r[1] for r in con.execute(f'PRAGMA table_info("{table}")')}
                if not have >= cols:
                    return True
    except sqlite3.Error:
        return False  # the file itself fails: its own error says so
    return False


class DirectStore(Store):
    """A SQLite ledger's single-record path, and the full store behind it for the rest."""

    def __init__(self, path: Path, conn: sqlite3.Connection, full: Callable[[], Store]):
        self.path = path
        self.where = f"SQLite database {str(path)!r}"
        self._conn: sqlite3.Connection | None = conn
        self._open_full = full
        self._full: Store | None = None
        #: One connection, used by one thread at a time (reads and writes alike).
        self._lock = threading.RLock()
        #: False once a write needed the full path (:class:`~..base.RunAgain`): from then on
        #: every write goes there.
        self._direct_writes = True
        self.read_only_reason = None
        #: Set while the file was not yet a whole ledger of this version when opened
        #: (:func:`pending`): every call is the full store's until a ``log()`` finds it is.
        self._waiting: tuple[str, tuple[Path, ...]] | None = None
        #: What this connection's last committed write left in the database (see
        #: :class:`Known`), valid while no other connection has committed since.
        self._known: Known | None = None
        #: The cursor writes run on (closed with the connection).
        self._cursor: sqlite3.Cursor | None = None

    # ------------------------------------------------------------------ the full store

    @property
    def full(self) -> Store:
        """The full SQLite store, opened the first time a call needs it."""
        if self._full is None:
            self._full = self._open_full()
        return self._full

    def __getattr__(self, name: str) -> Any:
        # Only reached for what this class lacks (the full store's engine, its Arrow pool, ...).
        if name.startswith("__") or name in ("_full", "_conn", "_open_full", "_waiting"):
            raise AttributeError(name)
        return getattr(self.full, name)

    # ------------------------------------------------------------------ the boundary

    def _cause(self, exc: BaseException) -> Cause | None:
        return sqlite_cause(exc, lambda: schema_altered(self.path), self.path)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, check_same_thread=False,
                                   factory=locks.EngineConnection)
            locks.engine_opened(locks.key(self.path), conn)  # type: ignore[arg-type]
            configure(conn)
            self._conn = conn
        return self._conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Cursor]:
        """One read snapshot (a deferred transaction), driver errors mapped."""
        with self._lock, boundary(self._cause, self.where, write=False):
            conn = self._connection()
            cur = conn.cursor()
            cur.execute("BEGIN")
            try:
                yield cur
            finally:
                if conn.in_transaction:
                    conn.rollback()
                cur.close()

    # ------------------------------------------------------------------ writes

    def writing(self, single: bool = False) -> AbstractContextManager[WriteTx]:
        return self.full.writing(single)

    def writing_one(self) -> AbstractContextManager[WriteTx]:
        if self._waiting is not None:
            with self._lock:
                waiting = self._waiting  # looked at again under the lock: another thread's
                if waiting is not None:  # log() may have taken the short path meanwhile
                    conn = _probe(self.path, *waiting)
                    if conn is not None:
                        self._conn, self._cursor, self._waiting = conn, None, None
        if not self._direct_writes or self._waiting is not None:
            return self.full.writing_one()
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[DirectWriteTx]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, as the full store's: the abort hooks run before
        the rollback (a failed ``COMMIT`` included), the commit hooks after the commit."""
        with self._lock:
            try:
                conn = self._connection()
                cur = self._cursor
                if cur is None:  # one cursor for every write on this connection, made once
                    cur = self._cursor = conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
                known, self._known = self._known, None  # trusted again only once this commits
                version = cur.execute(S.DATA_VERSION).fetchone()[0]
                if known is None or known.version != version:
                    known = Known(version)  # another connection committed: read afresh
                tx = DirectWriteTx(cur, self._give_up, known)
                try:
                    yield tx
                    conn.commit()
                except BaseException:
                    tx.aborted()
                    if conn.in_transaction:
                        conn.rollback()
                    raise
                self._known = known
            except (PerfLedgerError, RunAgain):
                raise
            except Exception as exc:
                cause = self._cause(exc)
                if cause is None:
                    raise
                raise perfledger_error(cause, self.where, exc, write=True) from exc
            tx.committed()

    def _give_up(self) -> NoReturn:
        """A write body needs the full path: so will every later one."""
        self._direct_writes = False
        raise RunAgain("the single-record path cannot run this write")

    # ------------------------------------------------------------------ reads it answers

    def get_meta(self, key: str) -> str | None:
        if self._waiting is not None:
            return self.full.get_meta(key)
        with self._reading() as cur:
            row = cur.execute(S.GET_META, {"key": key}).fetchone()
        return row[0] if row else None

    def last_id(self) -> int:
        if self._waiting is not None:
            return self.full.last_id()
        with self._reading() as cur:
            return int(cur.execute(S.MAX_ID).fetchone()[0])

    def directions(self) -> dict[str, bool]:
        if self._waiting is not None:
            return self.full.directions()
        with self._reading() as cur:
            return read_directions(cur)

    def best(self, ticker: str | None = None) -> dict[str, Any]:
        if self._waiting is not None:
            return self.full.best(ticker)
        with self._reading() as cur:
            return read_best(cur, ticker, read_directions(cur))

    def tickers(self) -> list[str]:
        if self._waiting is not None:
            return self.full.tickers()
        with self._reading() as cur:
            return [r[0] for r in cur.execute(S.TICKERS)]

    def models(self, ticker: str | None = None) -> list[str]:
        if self._waiting is not None:
            return self.full.models(ticker)
        with self._reading() as cur:
            rows = cur.execute(S.MODELS) if ticker is None else cur.execute(S.MODELS_OF, (ticker,))
            return [r[0] for r in rows]

    def schema_version(self) -> int:
        return self.full.schema_version() if self._waiting is not None else S.SCHEMA_VERSION

    def identity(self) -> tuple[Any, ...]:
        return file_identity(self.path)

    # ------------------------------------------------------------------ the rest: the full store's

    def snapshot(self) -> Any:
        return self.full.snapshot()

    def history(self, query: Any) -> Any:
        # Without params/tags filters the full store needs no SQLAlchemy connection of its
        # own: whether custom metrics exist is asked here (~20 µs), the read is columnar.
        if self._waiting is None and not (query.params or query.tags):
            with self._reading() as cur:
                has_extras = cur.execute(S.ANY_EXTRA).fetchone() is not None
            return self.full.history_plain(query, has_extras)
        return self.full.history(query)

    def count(self, query: Any) -> int:
        if self._waiting is None and direct_reads.answers(query):
            with self._reading() as cur:
                return direct_reads.count(cur, query)
        return self.full.count(query)

    def history_rows(self, query: Any) -> tuple[list[str], list[tuple[Any, ...]]] | None:
        if self._waiting is not None or not direct_reads.answers(query):
            return None
        with self._reading() as cur:
            return direct_reads.history_rows(cur, query)

    def latest(self, query: Any, metric: str) -> list[tuple[float, Any]] | None:
        if self._waiting is not None or not direct_reads.answers(query):
            return None
        with self._reading() as cur:
            found = direct_reads.latest(cur, query, metric)
        return [] if found is None else [found]

    def known_keys(self, keys: Sequence[str]) -> set[str]:
        return self.full.known_keys(keys)

    def leaderboard_stats(self, query: Any, by: Any = None) -> Any:
        return self.full.leaderboard_stats(query, by)

    def labels(self, ticker: str | None = None) -> Any:
        return self.full.labels(ticker)

    def metric_tails(self, query: Any) -> Any:
        return self.full.metric_tails(query)

    def returns(self, ids: Sequence[int]) -> Any:
        return self.full.returns(ids)

    def returns_matching(self, query: Any) -> Any:
        return self.full.returns_matching(query)

    @property
    def absent(self) -> bool:
        # The short path opens only a whole ledger; behind a pending one, the full store
        # (which opened where none was yet) knows.
        return self._waiting is not None and self.full.absent

    def create(self) -> None:
        if self._waiting is not None:
            self.full.create()

    def any_returns(self) -> bool:
        return self.full.any_returns()

    def stats(self) -> Mapping[str, Any]:
        return self.full.stats()

    # ------------------------------------------------------------------ lifecycle

    def dispose(self) -> None:
        with self._lock:
            self._known = self._cursor = None
            if self._conn is not None:
                _close(self._conn)
                self._conn = None
        if self._full is not None:
            self._full.dispose()

    def after_fork(self) -> None:
        # The parent's connection (and lock) are forgotten, never closed here: see :mod:`.locks`.
        self._conn, self._lock, self._known, self._cursor = None, threading.RLock(), None, None
        if self._full is not None:
            self._full.after_fork()


def read_directions(cur: sqlite3.Cursor) -> dict[str, bool]:
    """Core metric directions plus every registered custom metric's."""
    return {**CORE_DIRECTIONS, **{n: bool(h) for n, h in cur.execute(S.DIRECTIONS)}}


def read_best(cur: sqlite3.Cursor, ticker: str | None, directions: dict[str, bool]) -> dict[str, Any]:
    """The best-models document (:mod:`..best_document`), or one ticker's entry."""
    if ticker is None:
        tickers = [r[0] for r in cur.execute(S.TICKERS).fetchall()]
        return best_document(tickers, cur.execute(S.BEST_ROWS).fetchall(), directions)
    if cur.execute(S.TICKER_KNOWN, (ticker,)).fetchone() is None:
        return {}
    return best_document([ticker], cur.execute(S.BEST_ROWS_OF, (ticker,)).fetchall(), directions)[ticker]


class Known:
    """What one connection's committed writes left in the database: the metadata values it
    read or wrote, the highest record id, the metric directions.

    Why: every ``log()`` asks for the mirrors' state, ``max(id)`` and the directions, and
    they change only when someone writes. SQLite's ``PRAGMA data_version`` changes exactly
    when another connection (this process's full store, another process) has committed
    since this connection last looked, so a write that finds the version its last commit
    saw reads none of them again: one pragma instead of three queries. Whatever a
    transaction learns goes into its own :class:`Known`, kept by the store only once it
    commits (a rollback forgets it)."""

    __slots__ = ("directions", "last_id", "meta", "version")

    def __init__(self, version: int):
        self.version = version
        self.meta: dict[str, str | None] = {}
        self.last_id: int | None = None
        self.directions: dict[str, bool] | None = None


class DirectWriteTx(WriteTx):
    """One record's write transaction on the held connection, inside ``BEGIN IMMEDIATE``.

    Anything but one record's insert and the mirrors' bookkeeping calls ``give_up``, which
    raises :class:`~..base.RunAgain` (see the module doc). Reads of what the database held
    when this connection last committed come from ``known`` (:class:`Known`)."""

    def __init__(self, cursor: sqlite3.Cursor, give_up: Callable[[], NoReturn], known: Known):
        super().__init__()
        self.cursor = cursor
        self._give_up = give_up
        self._known = known

    @property
    def directions(self) -> dict[str, bool]:
        known = self._known
        if known.directions is None:
            known.directions = read_directions(self.cursor)
        return known.directions

    def get_meta(self, key: str) -> str | None:
        meta = self._known.meta
        if key not in meta:
            row = self.cursor.execute(S.GET_META, {"key": key}).fetchone()
            meta[key] = row[0] if row else None
        return meta[key]

    def set_meta(self, key: str, value: str) -> None:
        self.cursor.execute(S.UPSERT_META, {"key": key, "value": value})
        self._known.meta[key] = value

    def last_id(self) -> int:
        known = self._known
        if known.last_id is None:
            known.last_id = int(self.cursor.execute(S.MAX_ID).fetchone()[0])
        return known.last_id

    def best(self, ticker: str | None = None) -> dict[str, Any]:
        return read_best(self.cursor, ticker, self.directions)

    def insert(self, batch: Batch) -> Inserted:
        """The record, its custom metrics, kept returns and labels, then its aggregates
        merged (the rules of :class:`~..writes.SQLWriteTx.insert`, for one record)."""
        if len(batch) != 1:
            self._give_up()
        cur = self.cursor
        params, tags = batch.params[0], batch.tags[0]
        p_json, t_json = batch.json_or_none("params")[0], batch.json_or_none("tags")[0]
        cur.execute(S.INSERT_RECORDS, (None, batch.ticker[0], batch.model_name[0], batch.ts_us[0],
                                       *[batch.core[m][0] for m in CORE_METRICS], batch.notes[0],
                                       p_json, t_json))
        rid: int = cur.lastrowid  # type: ignore[assignment]
        self._known.last_id = rid  # a new rowid is above every stored one
        if batch.metrics[0]:
            cur.executemany(S.INSERT_EXTRA, [(rid, n, v) for n, v in batch.metrics[0].items()])
        kept = batch.returns[0] if batch.returns is not None else None
        if kept is not None:
            cur.execute(S.INSERT_RETURNS, (rid, kept.n, kept.values, kept.dates))
        if params or tags:
            self._add_labels(rid, params, tags)
        return Inserted([rid], self._merge(batch, rid))

    def _add_labels(self, rid: int, params: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        counts, per_record = collect([params], [tags])
        hashes = {label: digest(label) for label in counts}
        rows = sorted(({"h": hashes[lb], "kind": str(lb[0]), "key": lb[1], "value": lb[2], "n": n}
                       for lb, n in counts.items()), key=lambda r: r["h"])
        self.cursor.executemany(S.UPSERT_LABELS, rows)
        keys = sorted(set(hashes.values()))
        id_of: dict[str, int] = {}
        for i in range(0, len(keys), _IN_CHUNK):
            part = keys[i: i + _IN_CHUNK]
            id_of.update(self.cursor.execute(S.LABEL_IDS.format(", ".join("?" * len(part))), part).fetchall())
        self.cursor.executemany(S.INSERT_LINKS, [(rid, id_of[hashes[lb]]) for lb in per_record[0]])

    def _merge(self, batch: Batch, rid: int) -> bool:
        """The record's aggregates merged into the derived tables, one upsert per row (one
        record: a row per metric and the pair's, no order to keep); True when the
        best-models document changed (a best entry, or the ticker's first record)."""
        dirs = self.directions
        best_rows, summary_rows, pair_rows = batch.aggregates(dirs, [rid])
        execute = self.cursor.execute
        changed = False
        for row in best_rows:
            if execute(S.UPSERT_BEST_HI if dirs[row["metric"]] else S.UPSERT_BEST_LO, row).rowcount > 0:
                changed = True
        for row in summary_rows:
            execute(S.UPSERT_SUMMARY, row)
        if not best_rows:
            changed = execute(S.TICKER_KNOWN, (batch.ticker[0],)).fetchone() is None
        for row in pair_rows:
            execute(S.UPSERT_PAIRS, row)
        return changed

    # ------------------------------------------------------------------ the full path's

    def iter_batches(self, chunk: int = 20_000, after: int = 0, until: int | None = None) -> NoReturn:
        self._give_up()

    def claim_keys(self, keys: Sequence[str]) -> NoReturn:
        self._give_up()

    def clear(self) -> NoReturn:
        self._give_up()

    def cleared_batches(self, chunk: int = 50_000) -> NoReturn:
        self._give_up()

    def iter_cleared(self, chunk: int = 50_000) -> NoReturn:
        self._give_up()

    def keep_cleared(self, cleared_at: int, batches: Iterable[Batch]) -> NoReturn:
        self._give_up()

    def forget_cleared(self, before_us: int | None = None) -> NoReturn:
        self._give_up()

    def register_metric(self, name: str, higher_is_better: bool) -> NoReturn:
        self._give_up()

    def attach_returns(self, kept: Mapping[int, Any]) -> NoReturn:
        self._give_up()

    def __getattr__(self, name: str) -> Any:
        # What a full write transaction has and this one lacks (its SQLAlchemy connection,
        # asked for by an adoption of a mirror's records): the full path's work.
        if name.startswith("__"):
            raise AttributeError(name)
        self._give_up()

