"""A validated batch of records in columnar form, and the per-batch aggregates the store keeps.

One ``log()`` is a batch of one; ``log_many()`` a batch of a million. Keeping both on one
shape means the store has a single insert path. The aggregates (best candidate per
ticker/metric, running statistics per ticker/model/metric) are computed here, once per
batch, so the database merges a handful of rows instead of re-reading history.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .record import CORE_METRICS, Record
from .timestamps import format_ts_many, parse_timestamp

if TYPE_CHECKING:
    import pandas as pd

    from .kept_returns import KeptReturns


#: Batches larger than this aggregate with pandas group-bys, smaller ones in plain Python.
_FRAME_FROM = 256


@dataclass(slots=True)
class Batch:
    """Columns of one batch of records (not yet stored, or read back from a store)."""

    ticker: list[str]
    model_name: list[str]
    ts_us: list[int]
    core: dict[str, list[float | None]]
    notes: list[str]
    metrics: list[dict[str, float]]
    params: list[dict[str, Any]]
    tags: list[dict[str, str]]
    #: Each record's kept return series (None: it has none); None for a batch without any
    #: (:mod:`.kept_returns`, stored in ``pl_returns``).
    returns: list[KeptReturns | None] | None = None
    #: The validated frame a bulk load came from: the mirrors' Arrow columns are built from
    #: its arrays rather than from the lists above (no Python object per value).
    frame: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    _ts_text: list[str] | None = field(default=None, repr=False, compare=False)
    #: The mirrors' Arrow columns of this batch, built once (:func:`perfledger.mirrors.columns.seed_columns`).
    arrow: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ticker)

    @classmethod
    def from_record(cls, r: Record) -> Batch:
        """A batch of one record (every ``log()``)."""
        return cls([r.ticker], [r.model_name], [r.ts_us], {m: [getattr(r, m)] for m in CORE_METRICS},
                   [r.notes], [r.metrics], [r.params], [r.tags])

    @classmethod
    def from_records(cls, records: Sequence[Record]) -> Batch:
        return cls(
            ticker=[r.ticker for r in records],
            model_name=[r.model_name for r in records],
            ts_us=[r.ts_us for r in records],
            core={m: [getattr(r, m) for r in records] for m in CORE_METRICS},
            notes=[r.notes for r in records],
            metrics=[r.metrics for r in records],
            params=[r.params for r in records],
            tags=[r.tags for r in records],
        )

    @classmethod
    def from_seed_dicts(cls, records: Sequence[dict[str, Any]]) -> Batch:
        """From already-stored records (as :meth:`perfledger.Ledger.records` returns them)."""
        return cls(
            ticker=[r["ticker"] for r in records],
            model_name=[r["model_name"] for r in records],
            ts_us=[parse_timestamp(r["timestamp"]) for r in records],
            core={m: [r.get(m) for r in records] for m in CORE_METRICS},
            notes=[r.get("notes") or "" for r in records],
            metrics=[r.get("metrics") or {} for r in records],
            params=[r.get("params") or {} for r in records],
            tags=[r.get("tags") or {} for r in records],
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Batch:
        """From the normalised output of :func:`perfledger.records.validation.validate_frame`."""
        import numpy as np

        def floats(col: str) -> list[float | None]:
            arr = frame[col].to_numpy(dtype=float)
            obj = arr.astype(object)
            obj[np.isnan(arr)] = None
            return obj.tolist()

        return cls(
            ticker=frame["ticker"].tolist(),
            model_name=frame["model_name"].tolist(),
            ts_us=frame["ts_us"].astype("int64").tolist(),
            core={m: floats(m) for m in CORE_METRICS},
            notes=frame["notes"].tolist(),
            metrics=frame["metrics"].tolist(),
            params=frame["params"].tolist(),
            tags=frame["tags"].tolist(),
            returns=(frame["returns"].tolist() if "returns" in frame.columns
                     and frame["returns"].notna().any() else None),
            frame=frame,
        )

    def timestamps(self) -> list[str]:
        """The timestamps as text, formatted once per batch: both mirrors need them (one
        after the other: a large batch's are formatted in the one background thread)."""
        if self._ts_text is None:
            self._ts_text = format_ts_many(self.ts_us)
        return self._ts_text

    def json_or_none(self, col: str) -> list[str | None]:
        values: list[dict[str, Any]] = getattr(self, col)
        return [json.dumps(v, ensure_ascii=False, sort_keys=True) if v else None for v in values]

    # ------------------------------------------------------------------ aggregates

    def metric_rows(self) -> list[tuple[int, str, float]]:
        """(position, metric, value) for every non-missing metric, seed and custom."""
        rows = []
        for m in CORE_METRICS:
            for pos, v in enumerate(self.core[m]):
                if v is not None:
                    rows.append((pos, m, v))
        for pos, d in enumerate(self.metrics):
            for m, v in d.items():
                rows.append((pos, m, v))
        return rows

    def aggregates(
        self, directions: dict[str, bool], ids: Sequence[int]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """Best candidates, summary deltas and (ticker, model) pair deltas of this batch.

        Best: per (ticker, metric) the best value in the metric's direction, ties to the
        earliest (ts, id) — the same rule the store applies when merging. Summary: count,
        mean, M2 (sum of squared deviations, Chan et al.'s mergeable form), min, max and the
        latest value per (ticker, model, metric). ``ids`` are the records' ids, in order
        (ties between equal timestamps go to the lower id).
        """
        if len(self) == 1:
            return self._aggregates_one(directions, ids[0])
        if len(self) > _FRAME_FROM:
            return self._aggregates_frame(directions, ids)
        return self._aggregates_rows(directions, ids)

    def _aggregates_one(
        self, directions: dict[str, bool], rid: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """The aggregates of a batch of one record (every single ``log()``), spelled
        directly: each metric is its own best candidate and a summary of one value (mean the
        value, M2 zero), and the pair's first and last time are the record's. A third of
        :meth:`_aggregates_rows`' cost there; ``tests/test_batch_aggregates.py`` holds the
        three twins to the same answers."""
        t, mod, ts = self.ticker[0], self.model_name[0], self.ts_us[0]
        best_rows: list[dict[str, Any]] = []
        summary_rows: list[dict[str, Any]] = []
        core = self.core
        values = [(m, core[m][0]) for m in CORE_METRICS]
        values += self.metrics[0].items()
        for m, v in values:
            if v is None:
                continue
            if m in directions:
                best_rows.append({"ticker": t, "metric": m, "model_name": mod, "value": v, "ts": ts,
                                  "record_id": rid})
            summary_rows.append({"ticker": t, "model_name": mod, "metric": m, "n": 1, "mean": v, "m2": 0.0,
                                 "min": v, "max": v, "last_value": v, "last_ts": ts, "last_id": rid})
        pair = {"ticker": t, "model_name": mod, "n": 1, "first_ts": ts, "last_ts": ts}
        return best_rows, summary_rows, [pair]

    def _aggregates_rows(
        self, directions: dict[str, bool], ids: Sequence[int]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """The aggregates in plain Python. A single ``log()`` takes ~10 µs here against ~60 ms
        through pandas group-bys (measured), so both stay; ``tests/test_batch_aggregates.py``
        holds the twins to the same answers."""
        best: dict[tuple[str, str], tuple[float, int, int, int]] = {}
        summ: dict[tuple[str, str, str], list[Any]] = {}
        for pos, m, v in self.metric_rows():
            ts, rid = self.ts_us[pos], ids[pos]
            t, mod = self.ticker[pos], self.model_name[pos]
            if m in directions:
                key = (t, m)
                cur = best.get(key)
                score = v if directions[m] else -v
                if cur is None or score > cur[0] or (score == cur[0] and (ts, rid) < cur[1:3]):
                    best[key] = (score, ts, rid, pos)
            s = summ.get((t, mod, m))
            if s is None:
                summ[(t, mod, m)] = [1, v, 0.0, v, v, v, ts, rid]
            else:
                n, mean, m2 = s[0] + 1, s[1], s[2]
                delta = v - mean
                mean += delta / n
                s[0], s[1], s[2] = n, mean, m2 + delta * (v - mean)
                s[3], s[4] = min(s[3], v), max(s[4], v)
                if (ts, rid) > (s[6], s[7]):
                    s[5], s[6], s[7] = v, ts, rid
        best_rows = [
            {
                "ticker": t,
                "metric": m,
                "model_name": self.model_name[pos],
                "value": score if directions[m] else -score,
                "ts": ts,
                "record_id": rid,
            }
            for (t, m), (score, ts, rid, pos) in best.items()
        ]
        summary_rows = [
            {
                "ticker": t, "model_name": mod, "metric": m, "n": s[0], "mean": s[1], "m2": s[2],
                "min": s[3], "max": s[4], "last_value": s[5], "last_ts": s[6], "last_id": s[7],
            }
            for (t, mod, m), s in summ.items()
        ]
        pairs: dict[tuple[str, str], list[int]] = {}
        for pos in range(len(self)):
            key = (self.ticker[pos], self.model_name[pos])
            ts = self.ts_us[pos]
            p = pairs.get(key)
            if p is None:
                pairs[key] = [1, ts, ts]
            else:
                p[0] += 1
                p[1] = min(p[1], ts)
                p[2] = max(p[2], ts)
        pair_rows = [
            {"ticker": t, "model_name": mod, "n": p[0], "first_ts": p[1], "last_ts": p[2]}
            for (t, mod), p in pairs.items()
        ]
        return best_rows, summary_rows, pair_rows

    def _aggregates_frame(
        self, directions: dict[str, bool], ids: Sequence[int]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """The same aggregates with pandas group-bys on the wide frame, for large batches:
        one group-by per table, no per-row Python."""
        import numpy as np
        import pandas as pd

        src = self.frame  # its arrays when there is one: no Python object per value
        wide = pd.DataFrame(
            {
                "ticker": pd.Categorical(self.ticker if src is None else src["ticker"]),
                "model_name": pd.Categorical(self.model_name if src is None else src["model_name"]),
                "ts": np.asarray(self.ts_us if src is None else src["ts_us"], dtype=np.int64),
                "rid": np.asarray(ids, dtype=np.int64),
            }
        )
        metric_cols = []
        for m in CORE_METRICS:
            arr = np.array(self.core[m], dtype=float) if src is None else src[m].to_numpy(dtype=float)
            if not np.isnan(arr).all():
                wide[m] = arr
                metric_cols.append(m)
        custom = sorted({name for d in self.metrics for name in d})
        for name in custom:
            wide["x_" + name] = np.array([d.get(name, np.nan) for d in self.metrics], dtype=float)
            metric_cols.append("x_" + name)

        def metric_name(col: str) -> str:
            return col[2:] if col.startswith("x_") else col

        pairs = (
            wide.groupby(["ticker", "model_name"], observed=True, sort=False)
            .agg(n=("ts", "size"), first_ts=("ts", "min"), last_ts=("ts", "max"))
            .reset_index()
        )
        pair_rows = _records(pairs)

        best_rows: list[dict[str, Any]] = []
        by_ticker = wide.groupby("ticker", observed=True, sort=False)
        for col in metric_cols:
            name = metric_name(col)
            if name not in directions:
                continue
            target = by_ticker[col].transform("max" if directions[name] else "min")
            mask = wide[col].notna() & (wide[col] == target)
            cand = wide.loc[mask, ["ticker", "model_name", col, "ts", "rid"]]
            top = cand.sort_values(["ts", "rid"]).drop_duplicates("ticker", keep="first")
            for t, mod, v, ts, rid in zip(
                top["ticker"].astype(str), top["model_name"].astype(str), top[col].tolist(),
                top["ts"].tolist(), top["rid"].tolist(), strict=True
            ):
                best_rows.append({"ticker": t, "metric": name, "model_name": mod, "value": v,
                                  "ts": ts, "record_id": rid})

        summary_rows: list[dict[str, Any]] = []
        if metric_cols:
            ordered = wide.sort_values(["ts", "rid"])
            g = ordered.groupby(["ticker", "model_name"], observed=True, sort=False)[metric_cols]
            count, mean, mn, mx = g.count(), g.mean(), g.min(), g.max()
            m2 = g.var(ddof=0) * count
            last = g.last()  # the latest non-missing value of each metric
            last_ts = {}
            last_id = {}
            for col in metric_cols:
                sub = ordered.loc[ordered[col].notna(), ["ticker", "model_name", "ts", "rid"]]
                tail = sub.groupby(["ticker", "model_name"], observed=True, sort=False).last()
                last_ts[col], last_id[col] = tail["ts"], tail["rid"]
            for col in metric_cols:
                name = metric_name(col)
                frame = pd.DataFrame({
                    "n": count[col], "mean": mean[col], "m2": m2[col], "min": mn[col],
                    "max": mx[col], "last_value": last[col],
                })
                frame = frame[frame["n"] > 0].join(
                    pd.DataFrame({"last_ts": last_ts[col], "last_id": last_id[col]})
                ).reset_index()
                frame["ticker"] = frame["ticker"].astype(str)
                frame["model_name"] = frame["model_name"].astype(str)
                frame.insert(2, "metric", name)
                summary_rows.extend(_records(frame))
        return best_rows, summary_rows, pair_rows


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as dicts of plain Python scalars (drivers reject numpy types)."""
    cols = list(frame.columns)
    out = []
    for row in zip(*(frame[c].tolist() for c in cols), strict=True):
        out.append(dict(zip(cols, row, strict=True)))
    return out
