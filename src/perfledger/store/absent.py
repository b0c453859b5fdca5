"""The answers of a ledger that does not exist yet: a read never creates one.

Opening a database (or a new ledger directory) that holds no ledger creates nothing; the
first write creates the schema. Until then every read answers exactly as an empty ledger
does (no records, no tickers, ``{}`` best models), in the same shapes the SQL reads give, so
the frames and the faces above never learn the difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .base import HistoryQuery, HistoryRows, ReadTx

if TYPE_CHECKING:
    import pyarrow as pa

    from ..records.batch import Batch


def empty_history(query: HistoryQuery) -> HistoryRows:
    """No rows, with the columns (and types) a history query returns."""
    import pyarrow as pa

    fields: list[tuple[str, Any]] = [("id", pa.int64())] if query.include_meta else []
    fields.append(("ts", pa.int64()))
    if len(query.tickers) != 1:
        fields.append(("ticker", pa.string()))
    fields += [("model_name", pa.string()), *((m, pa.float64()) for m in query.core_columns())]
    if query.with_notes():
        fields.append(("notes", pa.string()))
    if query.include_meta:
        fields += [("params", pa.string()), ("tags", pa.string()), ("has_returns", pa.int64())]
    return HistoryRows(pa.schema(fields).empty_table())


def empty_tails() -> pa.Table:
    """No rows, with the columns of ``Store.metric_tails``."""
    import pyarrow as pa

    return pa.schema([("ticker", pa.string()), ("model_name", pa.string()), ("ts", pa.int64()),
                      ("id", pa.int64()), ("value", pa.float64())]).empty_table()


class _EmptyRead(ReadTx):
    """A snapshot of a ledger that does not exist yet (a copy from it copies nothing)."""

    def best(self, ticker: str | None = None) -> dict[str, Any]:
        return {}

    def iter_batches(self, chunk: int = 20_000, after: int = 0) -> Iterator[tuple[list[int], Batch]]:
        return iter(())

    def last_id(self) -> int:
        return 0

    def iter_cleared(self, chunk: int = 50_000) -> Iterator[tuple[int, int, Batch]]:
        return iter(())


EMPTY_READ: ReadTx = _EmptyRead()
