"""The seed's best-models document, shaped from ``pl_best`` rows: one rule for every path.

The full store (:mod:`.reads`, through SQLAlchemy) and the SQLite single-record path
(:mod:`.sqlite.direct`, on stdlib ``sqlite3``) read the same rows; this shapes them, so the
document (every tracked metric present, ``None`` entries for one never logged, timestamps
spelled once) cannot differ between them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from ..records.record import CORE_DIRECTIONS, CORE_METRICS
from ..records.timestamps import format_ts

#: One ``pl_best`` row: ``(ticker, metric, model_name, value, ts)``.
BestRow = Sequence[Any]


def best_document(tickers: Iterable[str], rows: Iterable[BestRow], directions: dict[str, bool]
                  ) -> dict[str, dict[str, Any]]:
    """``{ticker: {"best_<metric>": {"model", "value", "timestamp"}}}`` for ``tickers``, every
    tracked metric present (``None`` entries for a metric never logged), from ``rows``."""
    metrics = [*CORE_METRICS, *sorted(m for m in directions if m not in CORE_DIRECTIONS)]
    out: dict[str, dict[str, Any]] = {
        t: {f"best_{m}": {"model": None, "value": None, "timestamp": None} for m in metrics}
        for t in tickers
    }
    for t, metric, model, value, ts in rows:
        entry = out.get(t)
        if entry is not None and metric in directions:
            entry[f"best_{metric}"] = {"model": model, "value": value, "timestamp": _best_ts(ts)}
    return out


#: Best entries change rarely, and the whole document is re-spelled on each change: their
#: timestamps' text is remembered (bounded: one entry per best value ever seen, at most 8192).
_best_ts = functools.lru_cache(maxsize=8192)(format_ts)
