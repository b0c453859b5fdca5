"""The DataFrames users get, shaped from what the store answers (rows and Arrow tables).

The store knows SQL; this module knows what a researcher expects to hold: a history frame
with the seed's columns in the seed's order, timestamps as UTC datetimes and one column per
custom metric; whole records for exports; a leaderboard ranked in each metric's direction.
Nothing here reads the database, so every store shapes alike.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .records.record import CORE_METRICS, SEED_FIELDS
from .records.timestamps import format_ts_many

if TYPE_CHECKING:
    import pandas as pd

    from .store.base import HistoryQuery, HistoryRows


def history_frame(rows: HistoryRows, query: HistoryQuery) -> pd.DataFrame:
    """The user's history DataFrame: oldest first, the seed's columns, then custom metrics
    (and ``params``/``tags`` as dicts when the query asked for them).

    Why shaped in Arrow and converted once: pandas' per-column steps (a Series per column,
    a DataFrame built from them, the metrics copied into one block) cost ~2-5 ms whatever
    the rows, several times the read itself for a pair's few hundred rows. The columns are
    put in their final names, order and types as Arrow arrays (no copy for most), and
    ``to_pandas`` builds the frame in one pass."""
    import numpy as np
    import pyarrow as pa

    table = rows.records
    n = table.num_rows
    if query.limit and n > 1:  # the store returns the latest N newest first
        table = table.take(np.arange(n - 1, -1, -1))
    ts = table.column("ts")
    if not pa.types.is_timestamp(ts.type):  # UTC microseconds: typed in Arrow
        ts = (ts if ts.type == pa.int64() else ts.cast(pa.int64())).cast(pa.timestamp("us", tz="UTC"))
    names = ["timestamp", "ticker", "model_name"]
    one_ticker = query.tickers[0] if len(query.tickers) == 1 else None
    ticker = (table.column("ticker") if one_ticker is None
              else pa.repeat(pa.scalar(one_ticker, pa.string()), n))
    arrays = [ts, ticker, table.column("model_name")]
    for m in query.core_columns():
        col = table.column(m)
        arrays.append(col if col.type == pa.float64() else col.cast(pa.float64()))
        names.append(m)
    if query.with_notes():
        arrays.append(table.column("notes"))
        names.append("notes")
    # One thread: a thread pool costs more than it saves below a million rows or so.
    frame = pa.Table.from_arrays(arrays, names=names).to_pandas(use_threads=n >= 1_000_000)
    if query.include_meta:
        frame["params"] = [json.loads(v) if v else {} for v in table.column("params").to_pylist()]
        frame["tags"] = [json.loads(v) if v else {} for v in table.column("tags").to_pylist()]
        frame["record_id"] = table.column("id").to_numpy().astype(np.int64, copy=False)
        frame["has_returns"] = table.column("has_returns").to_numpy() != 0
    if rows.extras is not None and rows.extras.num_rows:
        extras = rows.extras.to_pandas()
        wide = extras.pivot(index="record_id", columns="name", values="value")
        wide = wide.reindex(table.column("id").to_numpy().astype(np.int64, copy=False))
        for name in sorted(wide.columns):
            frame[name] = wide[name].to_numpy(dtype=float, na_value=np.nan)
    for name in sorted(query.custom_columns() or ()):  # asked for, never stored: all NaN
        if name not in frame.columns:
            frame[name] = np.full(n, np.nan)
    return frame


#: The columns ``history(include_meta=True)`` adds (not custom metrics).
META_COLUMNS = ("params", "tags", "record_id", "has_returns")


def records_from_frame(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Whole records (the seed's dict plus ``metrics``, ``params``, ``tags``) from a history
    frame read with ``include_meta=True``."""
    custom = [c for c in frame.columns if c not in (*SEED_FIELDS, *META_COLUMNS)]
    stamps = format_ts_many(frame["timestamp"].dt.as_unit("us").astype("int64").to_numpy())
    core_fields = list(SEED_FIELDS[1:])
    rows = frame[core_fields].astype(object).where(frame[core_fields].notna(), None)
    extra = frame[custom].to_numpy(dtype=float) if custom else None
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows.itertuples(index=False, name=None)):
        rec: dict[str, Any] = {"timestamp": stamps[i], **dict(zip(core_fields, row, strict=True))}
        rec["metrics"] = (
            {c: float(extra[i, j]) for j, c in enumerate(custom) if not math.isnan(extra[i, j])}
            if extra is not None else {}
        )
        rec["params"] = frame["params"].iat[i]
        rec["tags"] = frame["tags"].iat[i]
        out.append(rec)
    return out


STATS = ("count", "mean", "std", "min", "max", "latest")


def leaderboard_frame(
    long: Sequence[Sequence[Any]],
    pairs: Sequence[Sequence[Any]],
    metric: str,
    directions: dict[str, bool],
    group: str = "model_name",
) -> pd.DataFrame:
    """One row per (ticker, group), columns ``<metric>_<stat>`` for every metric seen,
    ranked within each ticker by the mean of ``metric`` in its own direction (``rank`` 1 is
    best; a group that never logged the metric ranks last). The group column is
    ``model_name``, or (``group`` naming a param or tag) that key's values, decoded from
    their canonical JSON (numbers as numbers, arrays as tuples)."""
    import pandas as pd

    from .records.labels import decode, sort_key

    by_model = group == "model_name"
    rows: dict[tuple[str, Any], dict[str, Any]] = {
        (t, m): {"ticker": t, group: m, "records": int(n)} for t, m, n in pairs
    }
    seen: set[str] = set()
    for t, mod, name, n, mean, m2, mn, mx, last in long:
        row = rows.setdefault((t, mod), {"ticker": t, group: mod, "records": int(n)})
        seen.add(name)
        n = int(n)
        row[f"{name}_count"] = n
        row[f"{name}_mean"] = float(mean)
        row[f"{name}_std"] = math.sqrt(max(float(m2), 0.0) / (n - 1)) if n > 1 else math.nan
        row[f"{name}_min"] = float(mn)
        row[f"{name}_max"] = float(mx)
        row[f"{name}_latest"] = float(last)
    ordered = [m for m in CORE_METRICS if m in seen] + sorted(seen - set(CORE_METRICS))
    columns = ["rank", "ticker", group, "records"] + [
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
    if by_model:
        frame = frame.sort_values(["ticker", "rank", group], kind="stable")
    else:
        values = [decode(v) for v in frame[group]]
        order = sorted(range(len(frame)), key=lambda i: (
            frame["ticker"].iat[i], frame["rank"].iat[i], sort_key(values[i])))
        frame[group] = pd.Series(values, index=frame.index, dtype=object).infer_objects()
        frame = frame.iloc[order]
    return frame[[c for c in columns if c in frame.columns]].reset_index(drop=True)
