"""Is a model getting worse? Its latest evaluations against the ones just before them.

For every (ticker, model) pair, the latest ``recent`` values of a metric are compared with
the ``baseline`` values before them (all earlier ones when ``baseline`` is None) by a
one-sided **Mann–Whitney U test** in the metric's own direction: for a higher-is-better
metric (Sharpe) the alternative is "recent values tend to be lower", for a lower-is-better
one (MSE) "tend to be higher". ``decayed`` is ``p_value < alpha``.

Why Mann–Whitney rather than Welch's t (``docs/monitoring.md`` has the measurements):

* its false-alarm rate is what it says for *any* distribution of the metric: with no change
  (the evaluations exchangeable) every ordering of the values is equally likely, so the
  exact p-value is exact. Welch's t leans on normal means; metrics are often skewed (MSE)
  or bounded (win rate, drawdown). On lognormal MSE-like values, 20 recent against 80
  earlier, its one-sided level at 0.01 is 0.04 % one way and 3.8 % the other;
* heavy tails (the odd absurd evaluation) cost it nothing: with t(3)-distributed values a
  drop of one scale unit is caught 76 % of the time, against 56 % for Welch's t;
* it depends only on the order of the values, so MSE and RMSE give the same answer;
* on exactly normal values it loses nothing that matters here: a one-standard-deviation
  drop over the last 20 of 100 is caught 93.2 % of the time, Welch's t 92.9 %.

What it assumes: evaluations that are independent of each other given the model's level.
Overlapping backtest windows or retrains on mostly the same data make consecutive values
positively autocorrelated; then there is less independent information than the counts say
and p-values come out too small (false alarms above ``alpha``). The ``autocorr`` column (the
baseline's lag-1 autocorrelation) shows when to distrust them.

The p-value is exact (the null distribution of U counted by a q-binomial recursion, cached
per sample size) when no value ties and ``recent × baseline ≤ 40,000``; otherwise the normal
approximation with the tie-corrected variance and a continuity correction. Both agree with
``scipy.stats.mannwhitneyu`` (tested); scipy itself is not needed.

Pure: this module computes from the values it is given (numpy, pandas, the standard
library); :meth:`perfledger.Ledger.decay` reads them from the store.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from ..records.arguments import MIN_BASELINE as _MIN_BASELINE

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

#: Evaluations a pair needs beyond ``recent``: fewer than 10 earlier values say little.
MIN_BASELINE = _MIN_BASELINE
#: Earlier values compared with the recent ones by default: the recent past, not the model's
#: whole life (a drop a year ago should stop alarming once it is the new normal).
DEFAULT_BASELINE = 100
#: Largest recent × baseline for which the exact null distribution is counted.
EXACT_MAX_CELLS = 40_000

DECAY_COLUMNS = [
    "ticker", "model_name", "metric", "higher_is_better", "baseline_n", "recent_n",
    "baseline_mean", "recent_mean", "change", "prob_worse", "p_value", "decayed", "autocorr",
    "recent_from", "last_timestamp",
]

_NORMAL = NormalDist()


@lru_cache(maxsize=64)
def _exact_sf(n1: int, n2: int) -> np.ndarray:
    """``sf[w] = P(U >= w)`` for the Mann–Whitney U of samples of ``n1`` and ``n2`` values
    without ties, under the null hypothesis. The counts of each U are the coefficients of the
    Gaussian binomial [n1 + n2 choose n1]_q, built as ∏ (1 − q^(big+i)) / (1 − q^i) for
    i = 1..small; every intermediate polynomial is itself a Gaussian binomial (non-negative),
    so float64 loses nothing that matters at the tail."""
    small, big = min(n1, n2), max(n1, n2)
    size = small * big + 1
    poly = np.zeros(size)
    poly[0] = 1.0
    for i in range(1, small + 1):
        shift = big + i
        if shift < size:
            poly[shift:] -= poly[: size - shift].copy()
        # Divide by (1 − q^i): c[k] = a[k] + c[k − i], i.e. a cumulative sum along stride i.
        pad = (-size) % i
        grid = np.concatenate([poly, np.zeros(pad)]).reshape(-1, i)
        poly = np.cumsum(grid, axis=0).reshape(-1)[:size]
    total = poly.sum()
    return np.cumsum(poly[::-1])[::-1] / total


def _ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise ranks (1-based, ties averaged) of a 2-D array, and per row the tie term
    Σ(t³ − t) over groups of t equal values."""
    rows, n = values.shape
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    pos = np.broadcast_to(np.arange(n), (rows, n))
    starts = np.ones((rows, n), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = np.ones((rows, n), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, pos, n)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((rows, n))
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    size = (last - first + 1).astype(np.float64)
    return ranks, (size * size - 1.0).sum(axis=1)  # each of t members adds t² − 1: t³ − t


def worse_test(
    recent: np.ndarray, baseline: np.ndarray, higher_is_better: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Mann–Whitney U test, row by row: are the ``recent`` values (rows × n1)
    worse than the ``baseline`` ones (rows × n2) in the metric's direction?

    Returns ``(prob_worse, p_value)``: the share of (recent, baseline) pairs in which the
    recent value is the worse one (ties count half; 0.5 = no difference), and the p-value of
    a share at least this large if nothing changed. Equivalent to
    ``scipy.stats.mannwhitneyu(recent, baseline, alternative="less" if higher_is_better else
    "greater")`` with ``method="exact"`` (no ties, small samples) or ``"asymptotic"``.
    """
    recent = np.atleast_2d(np.asarray(recent, dtype=float))
    baseline = np.atleast_2d(np.asarray(baseline, dtype=float))
    n1, n2 = recent.shape[1], baseline.shape[1]
    ranks, ties = _ranks(np.concatenate([recent, baseline], axis=1))
    u_recent = ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2.0  # recent above baseline
    cells = n1 * n2
    worse = cells - u_recent if higher_is_better else u_recent
    p = np.empty(len(worse))
    exact = (ties == 0) & (cells <= EXACT_MAX_CELLS)
    if exact.any():
        sf = _exact_sf(n1, n2)
        p[exact] = sf[np.rint(worse[exact]).astype(np.int64)]
    approx = ~exact
    if approx.any():
        n = n1 + n2
        var = cells / 12.0 * ((n + 1) - ties[approx] / (n * (n - 1)))
        for k, (w, v) in zip(np.flatnonzero(approx), zip(worse[approx], var, strict=True), strict=True):
            p[k] = 1.0 if v <= 0 else 1.0 - _NORMAL.cdf((w - cells / 2.0 - 0.5) / math.sqrt(v))
    return worse / cells, np.clip(p, 0.0, 1.0)


def _lag1_autocorr(values: np.ndarray) -> np.ndarray:
    """Row-wise lag-1 autocorrelation (NaN for a constant row)."""
    dev = values - values.mean(axis=1, keepdims=True)
    denom = (dev * dev).sum(axis=1)
    num = (dev[:, 1:] * dev[:, :-1]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), np.nan)


def decay_frame(
    tails: pa.Table,
    metric: str,
    higher_is_better: bool,
    *,
    recent: int = 20,
    alpha: float = 0.01,
    baseline: int | None = DEFAULT_BASELINE,
) -> pd.DataFrame:
    """The decay table from each pair's newest values (``ticker, model_name, ts, id, value``,
    any order; see :meth:`perfledger.store.base.Store.metric_tails`).

    One row per pair with at least ``recent + 10`` values: ``recent`` newest against up to
    ``baseline`` before them. Columns :data:`DECAY_COLUMNS`; ``change`` = recent_mean −
    baseline_mean in the metric's units; ``autocorr`` = lag-1 autocorrelation of the
    baseline; ``recent_from``/``last_timestamp`` = the first and last recent evaluation (UTC).
    Sorted decayed first, then by p-value, ticker and model.
    """
    import pandas as pd
    import pyarrow.compute as pc

    if tails.num_rows == 0:
        return empty_decay_frame()
    tick = pc.dictionary_encode(tails.column("ticker")).combine_chunks()
    model = pc.dictionary_encode(tails.column("model_name")).combine_chunks()
    n_models = max(len(model.dictionary), 1)
    pair = tick.indices.to_numpy().astype(np.int64) * n_models + model.indices.to_numpy()
    ts = tails.column("ts").to_numpy().astype(np.int64)
    ids = tails.column("id").to_numpy().astype(np.int64)
    vals = tails.column("value").to_numpy(zero_copy_only=False).astype(float)
    order = np.lexsort((-ids, -ts, pair))  # per pair, newest first
    pair, ts, vals = pair[order], ts[order], vals[order]
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    counts = np.diff(np.r_[starts, len(pair)])
    keep = counts if baseline is None else np.minimum(counts, recent + baseline)
    ok = keep >= recent + MIN_BASELINE
    tickers = tick.dictionary.to_pylist()
    models = model.dictionary.to_pylist()
    parts = []
    for n_base in np.unique(keep[ok] - recent):
        sel = starts[ok & (keep - recent == n_base)]
        idx = sel[:, None] + np.arange(recent + n_base)[None, :]
        block = vals[idx]
        rec, base = block[:, :recent], block[:, recent:]
        prob, p = worse_test(rec, base, higher_is_better)
        parts.append(pd.DataFrame({
            "ticker": [tickers[int(c) // n_models] for c in pair[sel]],
            "model_name": [models[int(c) % n_models] for c in pair[sel]],
            "baseline_n": int(n_base),
            "recent_n": recent,
            "baseline_mean": base.mean(axis=1),
            "recent_mean": rec.mean(axis=1),
            "prob_worse": prob,
            "p_value": p,
            "autocorr": _lag1_autocorr(base[:, ::-1]),
            "recent_from": ts[sel + recent - 1],
            "last_timestamp": ts[sel],
        }))
    if not parts:
        return empty_decay_frame()
    out = pd.concat(parts, ignore_index=True)
    out["metric"] = metric
    out["higher_is_better"] = higher_is_better
    out["change"] = out["recent_mean"] - out["baseline_mean"]
    out["decayed"] = out["p_value"] < alpha
    for col in ("recent_from", "last_timestamp"):
        out[col] = pd.to_datetime(out[col], unit="us", utc=True)
    out = out.sort_values(
        ["decayed", "p_value", "ticker", "model_name"], ascending=[False, True, True, True], kind="stable"
    )
    return out[DECAY_COLUMNS].reset_index(drop=True)


def empty_decay_frame() -> pd.DataFrame:
    """A decay table without rows, with its columns and dtypes."""
    import pandas as pd

    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in DECAY_COLUMNS})
    ints = ("baseline_n", "recent_n")
    floats = ("baseline_mean", "recent_mean", "change", "prob_worse", "p_value", "autocorr")
    for c in ints:
        frame[c] = frame[c].astype("int64")
    for c in floats:
        frame[c] = frame[c].astype(float)
    for c in ("decayed", "higher_is_better"):
        frame[c] = frame[c].astype(bool)
    for c in ("recent_from", "last_timestamp"):
        frame[c] = pd.Series(dtype="datetime64[us, UTC]")
    return frame
