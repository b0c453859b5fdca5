"""Turning per-(ticker, model, metric) statistics into a ranked leaderboard.

The statistics come from the database (the maintained summary table, or a windowed GROUP
BY); this module only pivots a few thousand rows, never history itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .records import SEED_METRICS

if TYPE_CHECKING:
    import pandas as pd

STATS = ("count", "mean", "std", "min", "max", "latest")


def build_leaderboard(
    long: Sequence[Sequence[Any]],
    pairs: Sequence[Sequence[Any]],
    metric: str,
    directions: dict[str, bool],
) -> pd.DataFrame:
    """One row per (ticker, model), columns ``<metric>_<stat>`` for every metric seen,
    ranked within each ticker by the mean of ``metric`` in its own direction (``rank`` 1 is
    best; a model that never logged the metric ranks last)."""
    import pandas as pd

    rows: dict[tuple[str, str], dict[str, Any]] = {
        (t, m): {"ticker": t, "model_name": m, "records": int(n)} for t, m, n in pairs
    }
    seen: set[str] = set()
    for t, mod, name, n, mean, m2, mn, mx, last in long:
        row = rows.setdefault((t, mod), {"ticker": t, "model_name": mod, "records": int(n)})
        seen.add(name)
        n = int(n)
        row[f"{name}_count"] = n
        row[f"{name}_mean"] = float(mean)
        row[f"{name}_std"] = math.sqrt(max(float(m2), 0.0) / (n - 1)) if n > 1 else math.nan
        row[f"{name}_min"] = float(mn)
        row[f"{name}_max"] = float(mx)
        row[f"{name}_latest"] = float(last)
    ordered = [m for m in SEED_METRICS if m in seen] + sorted(seen - set(SEED_METRICS))
    columns = ["rank", "ticker", "model_name", "records"] + [
        f"{m}_{s}" for m in ordered for s in STATS
    ]
    frame = pd.DataFrame(list(rows.values()))
    if frame.empty:
        return pd.DataFrame(columns=columns)
    for c in columns:
        if c not in frame.columns and c != "rank":
            frame[c] = math.nan
    key = f"{metric}_mean"
    if key not in frame.columns:
        frame[key] = math.nan
    frame["rank"] = (
        frame.groupby("ticker")[key]
        .rank(ascending=not directions[metric], method="min", na_option="bottom")
        .astype(int)
    )
    for m in ordered:
        frame[f"{m}_count"] = frame[f"{m}_count"].fillna(0).astype(int)
    frame = frame.sort_values(["ticker", "rank", "model_name"], kind="stable")
    return frame[[c for c in columns if c in frame.columns]].reset_index(drop=True)
