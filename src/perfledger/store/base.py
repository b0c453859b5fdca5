"""The storage contract the :class:`~perfledger.Ledger` is written against.

The Ledger validates, keeps the mirror files and shapes the user's DataFrames; a store only
keeps records and the tables derived from them, and answers with plain rows or Arrow tables.
:class:`~perfledger.store.sql.SQLStore` (SQLAlchemy: SQLite embedded, PostgreSQL for teams)
implements it; another engine, or a test double, implements these methods and nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from ..batch import Batch

#: One row of per-(ticker, model, metric) statistics:
#: ``(ticker, model_name, metric, n, mean, m2, min, max, latest)``.
StatRow = Sequence[Any]
#: One (ticker, model) pair and its record count: ``(ticker, model_name, n)``.
PairRow = Sequence[Any]


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


class WriteTx(ABC):
    """A write transaction. Writers are serialised; everything done through one ``WriteTx``
    commits or rolls back together (records, derived tables and mirror bookkeeping)."""

    @abstractmethod
    def insert(self, batch: Batch) -> bool:
        """Store the batch (assigning ``batch.ids``); True when the best-models document
        changed (a best entry, or a ticker's first record)."""

    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    @abstractmethod
    def best(self, ticker: str | None = None) -> dict[str, Any]:
        """The best-models document as this transaction sees it."""

    @abstractmethod
    def iter_batches(self, chunk: int = 20_000) -> Iterator[Batch]:
        """All records in insertion (id) order, a columnar batch at a time."""

    @abstractmethod
    def clear(self) -> None: ...

    @abstractmethod
    def register_metric(self, name: str, higher_is_better: bool) -> bool:
        """Register a custom metric's direction and recompute its best entries; True when
        anything changed."""


class Store(ABC):
    """An opened ledger database, used by one process (see :meth:`after_fork`)."""

    @abstractmethod
    def writing(self) -> AbstractContextManager[WriteTx]:
        """A write transaction (serialised with every other writer)."""

    @abstractmethod
    def is_conflict(self, exc: BaseException) -> bool:
        """True when ``exc`` aborted a write transaction that may simply be run again (a
        deadlock or serialisation failure between concurrent writers)."""

    @abstractmethod
    def history(self, query: HistoryQuery) -> HistoryRows: ...

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
    def leaderboard_stats(self, query: HistoryQuery) -> tuple[list[StatRow], list[PairRow]]:
        """Per (ticker, model, metric) statistics and per (ticker, model) counts of the records
        matching ``query`` (``limit`` and ``include_meta`` ignored): from the maintained summary
        when it names tickers at most, else aggregated in the database over the matching
        records (time window, metric bounds, models)."""

    @abstractmethod
    def metric_tails(self, query: TailQuery) -> pa.Table:
        """Each pair's ``keep`` newest non-null values of ``query.metric`` within the filters:
        ``ticker, model_name, ts`` (UTC microseconds), ``id``, ``value``; rows in any order."""

    @abstractmethod
    def stats(self) -> Mapping[str, Any]:
        """Counts, the latest log time and a ``state`` token that changes on every write."""

    @abstractmethod
    def after_fork(self) -> None:
        """Drop connections inherited from the parent process (never close them: they are
        the parent's)."""

    @abstractmethod
    def dispose(self) -> None:
        """Close every connection; the store may not be used afterwards."""
