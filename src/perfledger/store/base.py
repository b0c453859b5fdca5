"""The storage contract the :class:`~perfledger.Ledger` is written against.

The Ledger validates, keeps the mirror files and shapes the user's DataFrames; a store only
keeps records and the tables derived from them, and answers with plain rows or Arrow tables.
Every error a store raises is one of :mod:`perfledger.errors` (driver errors are mapped at
its boundary, :mod:`.errors`). :class:`~.sqlite.store.SQLiteStore` (embedded) and
:class:`~.postgres.store.PostgresStore` (for teams) implement it over a shared SQLAlchemy
base (:class:`~.sql.SQLStore`); another engine, or a test double, implements these methods
and nothing else.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..records.record import CORE_METRICS

if TYPE_CHECKING:
    import pyarrow as pa

    from ..records.batch import Batch
    from ..records.kept_returns import KeptReturns
    from ..records.labels import Grouping

log = logging.getLogger("perfledger")

#: One row of per-(ticker, group, metric) statistics:
#: ``(ticker, group, metric, n, mean, m2, min, max, latest)``; the group is the model name,
#: or a param's or tag's canonical value.
StatRow = Sequence[Any]
#: One (ticker, group) and its record count: ``(ticker, group, n)``.
PairRow = Sequence[Any]
#: One distinct param or tag value and its record count: ``(kind, key, canonical value, n)``.
LabelRow = tuple[str, str, str, int]


class ReadAgain(Exception):
    """A read overlapped a change it could not see through (a writer checkpointing a file
    this process opened ``immutable``): the store runs the read again."""


class RunAgain(Exception):
    """A write transaction's body asked for what the store's short single-record path does
    not do (a repair of the mirror files, a batch): nothing was stored, and the store writes
    through its full path from now on; the caller runs the write again."""


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Filters of a history query, already validated; every one is evaluated in the database."""

    tickers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    since_us: int | None = None
    until_us: int | None = None
    at_least: tuple[tuple[str, float], ...] = ()
    at_most: tuple[tuple[str, float], ...] = ()
    limit: int | None = None
    include_meta: bool = False
    #: Records whose params/tags hold each key with this value: (key, canonical JSON value)
    #: pairs (see :mod:`perfledger.records.labels`), sorted by key.
    params: tuple[tuple[str, str], ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    #: Only these metrics (core or custom) and ``"notes"`` besides the record's ts, ticker
    #: and model; None reads every column. A chart of one metric reads a ninth of the values.
    columns: tuple[str, ...] | None = None

    def core_columns(self) -> tuple[str, ...]:
        """The core metrics this query reads, in their usual order."""
        cols = self.columns
        return CORE_METRICS if cols is None else tuple(m for m in CORE_METRICS if m in cols)

    def custom_columns(self) -> tuple[str, ...] | None:
        """The custom metrics this query reads (None: every one the ledger holds)."""
        cols = self.columns
        return None if cols is None else tuple(c for c in cols if c not in CORE_METRICS and c != "notes")

    def with_notes(self) -> bool:
        return self.columns is None or "notes" in self.columns


@dataclass(frozen=True, slots=True)
class HistoryRows:
    """A history answer, columnar.

    ``records``: ``ts`` (UTC microseconds or an Arrow timestamp), ``ticker`` (absent when
    the query named exactly one), ``model_name``, the core metrics, ``notes``, with
    ``params``/``tags`` (JSON text) when asked for and ``id`` when ``extras`` is given;
    oldest first, or newest first when the query has a ``limit``.
    ``extras``: custom metric values, ``record_id, name, value``, or None when the ledger
    never stored one.
    """

    records: pa.Table
    extras: pa.Table | None = None


@dataclass(frozen=True, slots=True)
class TailQuery:
    """The latest values of one metric per (ticker, model) pair, already validated.

    ``keep``: how many of each pair's newest values (None: all); ``min_count``: pairs whose
    all-time count of the metric is below it may be left out (a cheap pre-filter: the caller
    still checks the counts within the time window).
    """

    metric: str
    custom: bool = False
    tickers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    since_us: int | None = None
    until_us: int | None = None
    keep: int | None = None
    min_count: int = 1


@dataclass(frozen=True, slots=True)
class Inserted:
    """What :meth:`WriteTx.insert` stored: the records' ids in the batch's order, and whether
    the best-models document changed (a best entry, or a ticker's first record)."""

    ids: list[int]
    best_changed: bool


class ReadTx(ABC):
    """A read snapshot: every read through it sees the store as of one moment, and it holds
    no write lock (writers go on while it is open)."""

    @abstractmethod
    def best(self, ticker: str | None = None) -> dict[str, Any]:
        """The best-models document as this transaction sees it."""

    @abstractmethod
    def iter_batches(
        self, chunk: int = 20_000, after: int = 0, until: int | None = None
    ) -> Iterator[tuple[list[int], Batch]]:
        """The records whose id is above ``after`` (all, by default) and at most ``until``
        (if given), in insertion (id) order, a columnar batch at a time, each with its
        records' ids."""

    @abstractmethod
    def last_id(self) -> int:
        """The highest record id (0 for an empty store)."""

    @abstractmethod
    def iter_cleared(self, chunk: int = 50_000) -> Iterator[tuple[int, int, Batch]]:
        """The records cleared and not purged, in the order they were cleared, a batch at a
        time, each batch of one clear: ``(clear id, cleared_at in UTC microseconds, batch)``."""


class InitialLoader(Protocol):
    """An initial load into an empty store, open in a write transaction
    (:meth:`WriteTx.initial_load`): batches added, then finished, then the transaction commits."""

    loaded: int

    def add(self, batch: Batch, keys: Sequence[str]) -> list[int]:
        """Store ``batch`` and claim its records' content keys ``keys`` (distinct, none added
        before); returns the records' ids."""

    def finish(self) -> None:
        """Whatever the load deferred (indexes, derived tables): before the commit."""


class WriteTx(ReadTx):
    """A write transaction. Writers are serialised; everything done through one ``WriteTx``
    commits or rolls back together (records, derived tables and mirror bookkeeping).

    Files kept beside the database (the mirrors) join the transaction through
    :meth:`on_abort` and :meth:`on_commit`: the store runs them, so a failed ``COMMIT`` takes
    the files back exactly as a failure in the transaction's body does."""

    def __init__(self) -> None:
        self._on_abort: list[Callable[[], None]] = []
        self._on_commit: list[Callable[[], None]] = []

    def on_abort(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` if this transaction fails (its body raised, or its ``COMMIT`` did),
        before the rollback, while the write lock is still held: no other writer has
        touched anything since."""
        self._on_abort.append(fn)

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once this transaction has committed."""
        self._on_commit.append(fn)

    def aborted(self) -> None:
        """Called by the store when the transaction failed, before it rolls back. The
        transaction's own error is the one raised: a failing hook is logged."""
        hooks, self._on_abort, self._on_commit = self._on_abort, [], []
        for fn in reversed(hooks):
            try:
                fn()
            except Exception:
                log.exception("undoing a failed write transaction's side effects failed")

    def committed(self) -> None:
        """Called by the store once the transaction committed."""
        hooks, self._on_abort, self._on_commit = self._on_commit, [], []
        for fn in hooks:
            fn()

    @abstractmethod
    def insert(self, batch: Batch) -> Inserted:
        """Store the batch; returns the new records' ids and whether the best-models
        document changed."""

    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def claim_keys(self, keys: Sequence[str]) -> set[str]:
        """Record imported rows' content keys; returns those that were not recorded before.
        The database enforces their uniqueness, so of concurrent transactions claiming one
        key exactly one gets it (the others wait for it to commit, then see it taken)."""

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    @abstractmethod
    def clear(self) -> int:
        """Take every record out of the ledger (registered metrics stay), keeping them until
        purged; returns how many were kept."""

    @abstractmethod
    def cleared_batches(self, chunk: int = 50_000) -> Iterator[Batch]:
        """The records cleared and not purged, a batch at a time, in the order they were cleared."""

    @abstractmethod
    def keep_cleared(self, cleared_at: int, batches: Iterable[Batch]) -> int:
        """Keep ``batches`` as the records of one more clear, made at ``cleared_at`` (a copy
        carries the source's cleared records this way); returns how many."""

    @abstractmethod
    def forget_cleared(self, before_us: int | None = None) -> int:
        """Delete for good the records kept by every clear made before ``before_us`` (UTC
        microseconds; None: all); returns how many records."""

    def initial_load(self) -> InitialLoader | None:
        """Begin loading records into this store as into an empty one, the way a restore
        loads (an engine that can: PostgreSQL, :mod:`.postgres.initial_load`), or None: this
        engine has no such path, or the store is not empty (found under the lock the load
        takes, which this transaction then holds until it ends). None by default: the
        caller takes the normal insert path."""
        return None

    @abstractmethod
    def register_metric(self, name: str, higher_is_better: bool) -> bool:
        """Register a custom metric's direction and recompute its best entries; True when
        anything changed."""

    @abstractmethod
    def attach_returns(self, kept: Mapping[int, KeptReturns]) -> list[int]:
        """Keep ``kept[id]`` as the return series of record ``id``, for each record that
        still exists and has none (an import or a sync bringing the series of a record the
        ledger holds without one); returns the ids that got theirs. A record that has a
        series keeps it: a series is never replaced."""


class Store(ABC):
    """An opened ledger database, used by one process (see :meth:`after_fork`)."""

    #: Why this process may not write the store (the one line its writes raise), or None.
    read_only_reason: str | None = None
    #: What opening it with ``repair`` did, one line each (empty otherwise).
    repaired: Sequence[str] = ()

    @property
    def absent(self) -> bool:
        """Whether the database holds no ledger yet (reads answer as an empty one)."""
        return False

    def create(self) -> None:
        """Create the ledger now, as the first write would (nothing when it exists): a
        ledger opened where none exists creates nothing until it is written."""
        return None

    @abstractmethod
    def writing(self, single: bool = False) -> AbstractContextManager[WriteTx]:
        """A write transaction (serialised with every other writer). ``single=True`` promises
        that its body is one :meth:`WriteTx.insert` and nothing else, so an engine may send a
        one-record insert as one self-committing statement (PostgreSQL: one round trip
        instead of ``BEGIN``, the statement, ``COMMIT``). Raises
        :class:`~perfledger.errors.ReadOnlyLedgerError` on a store opened read-only, and
        :class:`~perfledger.errors.WriteConflictError` when a concurrent writer made it fail
        (nothing was stored: the caller may run it again)."""

    def writing_one(self) -> AbstractContextManager[WriteTx]:
        """A write transaction whose body is the insert of ONE record (a ``log()``) and the
        mirrors' bookkeeping: a store may run it on a shorter path (the SQLite store on
        stdlib ``sqlite3``), which raises :class:`RunAgain` if the body needs more."""
        return self.writing(single=True)

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[ReadTx]:
        """A consistent read snapshot that takes no write lock (long reads such as a copy
        must not make writers wait)."""

    @abstractmethod
    def identity(self) -> tuple[Any, ...]:
        """What tells two stores apart: equal for two handles on one database."""

    @abstractmethod
    def history(self, query: HistoryQuery) -> HistoryRows: ...

    def history_rows(self, query: HistoryQuery) -> tuple[list[str], list[tuple[Any, ...]]] | None:
        """``history(query)`` as plain columns and row tuples, when this store reads them
        without pandas or Arrow (the SQLite single-record path:
        :mod:`.sqlite.direct_reads`); None otherwise (the caller builds the DataFrame)."""
        return None

    def latest(self, query: HistoryQuery, metric: str) -> list[tuple[float, Any]] | None:
        """The latest value of ``metric`` among the records ``query`` selects with its
        timestamp (a UTC ``datetime``), as a list of one, or ``[]`` when there is none; None
        when this store does not answer it without pandas (as :meth:`history_rows`)."""
        return None

    @abstractmethod
    def count(self, query: HistoryQuery) -> int:
        """How many records ``history(query)`` would return without its limit, counted by
        the database (a table showing the latest rows says how many matched)."""

    @abstractmethod
    def get_meta(self, key: str) -> str | None:
        """A ``pl_meta`` value as committed (a read: no write lock)."""

    @abstractmethod
    def last_id(self) -> int:
        """The highest record id as committed (0 for an empty store)."""

    @abstractmethod
    def known_keys(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` (import content keys) already recorded, as committed (a read:
        a sync asks before it claims, to skip reading the history of records it already
        holds)."""

    @abstractmethod
    def best(self, ticker: str | None = None) -> dict[str, Any]:
        """``{ticker: {"best_<metric>": {"model", "value", "timestamp"}}}``, or one ticker's
        inner dict (``{}`` for an unknown ticker)."""

    @abstractmethod
    def tickers(self) -> list[str]: ...

    @abstractmethod
    def models(self, ticker: str | None = None) -> list[str]: ...

    @abstractmethod
    def directions(self) -> dict[str, bool]:
        """Every tracked metric (core and registered custom) → higher is better."""

    @abstractmethod
    def leaderboard_stats(
        self, query: HistoryQuery, by: Grouping = None
    ) -> tuple[list[StatRow], list[PairRow]]:
        """Per (ticker, group, metric) statistics and per (ticker, group) counts of the records
        ``query`` selects (its tickers, time window, params and tags). The group is the model
        (``by=None``), or the canonical JSON value of the param/tag ``by`` names (records
        without it are left out). Over all history of one or every ticker they come from the
        maintained summary; otherwise the database aggregates them."""

    @abstractmethod
    def labels(self, ticker: str | None = None) -> list[LabelRow]:
        """Every distinct param and tag value (of ``ticker``'s records) with its record count."""

    @abstractmethod
    def metric_tails(self, query: TailQuery) -> pa.Table:
        """Each pair's ``keep`` newest non-null values of ``query.metric`` within the filters:
        ``ticker, model_name, ts`` (UTC microseconds), ``id``, ``value``; rows in any order."""

    def returns(self, ids: Sequence[int]) -> dict[int, KeptReturns]:
        """The return series kept for the records ``ids`` (those that kept one), by id."""
        return {}

    def returns_matching(self, query: HistoryQuery) -> list[tuple[int, str, float | None, KeptReturns]]:
        """(record id, model name, ``periods_per_year`` or None, series) of the records
        ``query`` selects that kept a return series, oldest first: only those columns, in one
        read (no other metric, notes, params or tags, which aligning the series does not
        need; the frequency it does, :mod:`perfledger.records.alignment`)."""
        return []

    def any_returns(self) -> bool:
        """Whether any record keeps a return series (one index probe: views that need them
        skip every other read when none does)."""
        return False

    @abstractmethod
    def stats(self) -> Mapping[str, Any]:
        """Counts (records, tickers, models, ``cleared``: records cleared and kept until
        purged), the latest log time and a ``state`` token that changes on every write."""

    @abstractmethod
    def schema_version(self) -> int:
        """The schema version the store is at (this release's, once it opened)."""

    @abstractmethod
    def after_fork(self) -> None:
        """Drop connections inherited from the parent process (never close them: they are
        the parent's)."""

    @abstractmethod
    def dispose(self) -> None:
        """Close every connection. A later call opens new ones."""
