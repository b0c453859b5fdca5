"""Reads that run on a connection the caller holds.

Both the store (in a read transaction) and the writer (inside its write transaction, when
the mirrors need the best-models document it is about to commit) ask these questions, so
they live here, below both, and neither calls back into the other.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..record import CORE_DIRECTIONS, CORE_METRICS
from ..timestamps import format_ts
from . import schema as T


def read_directions(conn: sa.Connection) -> dict[str, bool]:
    """Core metric directions plus every registered custom metric's."""
    rows = conn.execute(sa.select(T.metric_defs.c.name, T.metric_defs.c.higher_is_better))
    return {**CORE_DIRECTIONS, **{n: bool(h) for n, h in rows}}


def read_best(
    conn: sa.Connection, ticker: str | None = None, directions: dict[str, bool] | None = None
) -> dict[str, Any]:
    """The seed's best-models document from the maintained ``pl_best`` table (no scan)."""
    directions = directions if directions is not None else read_directions(conn)
    metrics = [*CORE_METRICS, *sorted(m for m in directions if m not in CORE_DIRECTIONS)]
    if ticker is not None:
        exists = conn.execute(
            sa.select(T.pairs.c.ticker).where(T.pairs.c.ticker == ticker).limit(1)
        ).first()
        if exists is None:
            return {}
        tickers = [ticker]
        rows = conn.execute(sa.select(T.best).where(T.best.c.ticker == ticker))
    else:
        tickers = [r[0] for r in conn.execute(
            sa.select(T.pairs.c.ticker).distinct().order_by(T.pairs.c.ticker))]
        rows = conn.execute(sa.select(T.best))
    out: dict[str, dict[str, Any]] = {
        t: {f"best_{m}": {"model": None, "value": None, "timestamp": None} for m in metrics}
        for t in tickers
    }
    for r in rows:
        entry = out.get(r.ticker)
        if entry is not None and r.metric in directions:
            entry[f"best_{r.metric}"] = {
                "model": r.model_name, "value": r.value, "timestamp": format_ts(r.ts)
            }
    return out[ticker] if ticker is not None else out
