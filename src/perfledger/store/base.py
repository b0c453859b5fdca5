"""The storage contract the :class:`~perfledger.Ledger` talks to.

One abstract store keeps the ledger's logic (validation, mirrors, seed shapes) independent of
the engine. Today there is one implementation, :class:`~perfledger.store.sql.SQLStore`, on
SQLAlchemy (SQLite embedded, PostgreSQL for teams); a test double or another engine only has
to honour these methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from ..batch import Batch


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Filters of a history query; every one is evaluated in the database."""

    tickers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    since_us: int | None = None
    until_us: int | None = None
    at_least: tuple[tuple[str, float], ...] = ()
    at_most: tuple[tuple[str, float], ...] = ()
    limit: int | None = None
    include_meta: bool = False


class WriteTx(ABC):
    """A write transaction. Writers are serialised; everything done through one ``WriteTx``
    commits or rolls back together (records, derived tables and mirror bookkeeping)."""

    @abstractmethod
    def insert(self, batch: Batch) -> bool:
        """Store the batch (assigning ``batch.ids``); True when any best entry changed."""

    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    @abstractmethod
    def best(self, ticker: str | None = None) -> dict[str, dict[str, Any]]: ...

    @abstractmethod
    def iter_batches(self, chunk: int = 20_000) -> Iterator[Batch]:
        """All records in insertion (id) order, a columnar batch at a time."""

    @abstractmethod
    def clear(self) -> None: ...

    @abstractmethod
    def register_metric(self, name: str, higher_is_better: bool) -> bool:
        """Register a custom metric's direction and recompute its best entries."""


class Store(ABC):
    """An opened ledger database."""

    #: True for a server database shared between machines (no local mirrors by default).
    shared: bool = False

    @abstractmethod
    def writing(self) -> AbstractContextManager[WriteTx]: ...

    @abstractmethod
    def history(self, query: HistoryQuery) -> pd.DataFrame: ...

    @abstractmethod
    def best(self, ticker: str | None = None) -> dict[str, dict[str, Any]]: ...

    @abstractmethod
    def tickers(self) -> list[str]: ...

    @abstractmethod
    def models(self, ticker: str | None = None) -> list[str]: ...

    @abstractmethod
    def directions(self) -> dict[str, bool]: ...

    @abstractmethod
    def leaderboard(
        self, ticker: str | None, metric: str, since_us: int | None
    ) -> pd.DataFrame: ...

    @abstractmethod
    def stats(self) -> Mapping[str, Any]:
        """Counts and the latest log time, from the derived tables (no scan)."""

    @abstractmethod
    def dispose(self) -> None: ...
