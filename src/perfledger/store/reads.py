"""Reads that run on a connection the caller holds.

Both the store (in a read transaction) and the writer (inside its write transaction, when
the mirrors need the best-models document it is about to commit) ask these questions, so
they live here, below both, and neither calls back into the other.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..records.record import CORE_DIRECTIONS
from . import schema as T
from .best_document import best_document


def read_directions(conn: sa.Connection) -> dict[str, bool]:
    """Core metric directions plus every registered custom metric's."""
    rows = conn.execute(sa.select(T.metric_defs.c.name, T.metric_defs.c.higher_is_better))
    return {**CORE_DIRECTIONS, **{n: bool(h) for n, h in rows}}


def read_best(
    conn: sa.Connection, ticker: str | None = None, directions: dict[str, bool] | None = None
) -> dict[str, Any]:
    """The seed's best-models document from the maintained ``pl_best`` table (no scan)."""
    directions = directions if directions is not None else read_directions(conn)
    if ticker is not None:
        exists = conn.execute(
            sa.select(T.pairs.c.ticker).where(T.pairs.c.ticker == ticker).limit(1)
        ).first()
        if exists is None:
            return {}
        tickers = [ticker]
        rows = conn.execute(sa.select(T.best.c.ticker, T.best.c.metric, T.best.c.model_name,
                                      T.best.c.value, T.best.c.ts).where(T.best.c.ticker == ticker))
    else:
        # Every ticker's entry is read whenever a best value changes (the mirror's document):
        # plain SQL and tuples, no per-row Row objects (a third of the cost at 50 tickers).
        tickers = [r[0] for r in conn.exec_driver_sql(_TICKERS_SQL)]
        rows = conn.exec_driver_sql(_BEST_SQL)
    out = best_document(tickers, rows, directions)
    return out[ticker] if ticker is not None else out


_TICKERS_SQL = "SELECT DISTINCT ticker FROM pl_pairs ORDER BY ticker"
_BEST_SQL = "SELECT ticker, metric, model_name, value, ts FROM pl_best"
