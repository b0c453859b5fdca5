"""The Probability of Backtest Overfitting (PBO) by combinatorially symmetric cross-validation.

Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest Overfitting", Journal of
Computational Finance 20(4), 2017. A sweep tried N configurations over the same T periods;
the one with the best in-sample score is the one reported. CSCV asks, for every way of
splitting the periods into two halves, *does the in-sample winner still beat the others out
of sample?* PBO is the share of splits where it does not.

The procedure, exactly as computed here (:func:`probability_of_backtest_overfitting`):

1. ``returns`` is a T × N matrix: one column per trial, one row per period, aligned on
   common periods. The *first* ``T mod S`` rows (the oldest) are dropped so the S blocks are
   equal (the paper's equal-size submatrices; pypbo does the same), and the remaining
   periods are cut into S contiguous blocks of ``T // S`` periods.
2. Every choice of S/2 blocks is an in-sample set J; its complement J̄ is the out-of-sample
   set: C(S, S/2) splits (12,870 for S = 16), each set playing in-sample once and
   out-of-sample once.
3. On each split the metric (Sharpe by default) is computed for every trial on J and on J̄.
   The winner n* is the trial with the highest in-sample metric (ties: the lowest column
   index, ``numpy.argmax``).
4. Its out-of-sample rank among the N trials is r ∈ [1, N] (1 worst, N best); tied
   out-of-sample values share their average rank (``scipy.stats.rankdata(method="average")``),
   so r = #(others strictly below) + (#(equal, the winner included) + 1) / 2.
   ω = r / (N + 1) ∈ (0, 1) and the logit λ = ln(ω / (1 − ω)) (finite: the N + 1 keeps ω
   away from 1).
5. PBO = #(λ ≤ 0) / C(S, S/2): the share of splits where the in-sample winner ranks at or
   below the out-of-sample median. λ = 0 happens only for odd N (r = (N + 1)/2) and then
   counts as overfit, as in the paper's ∫₋∞⁰ f(λ)dλ (and pypbo, the R ``pbo`` package); an
   unskilled sweep therefore has PBO ≈ 0.5 for even N and ≈ (N + 1)/(2N) for odd N.
6. Performance degradation: the ordinary least-squares line of the winners' out-of-sample
   metric on their in-sample metric over the splits (slope, intercept, R²); the probability
   of loss is the share of splits whose winner's out-of-sample metric is below 0.

Speed: the built-in metrics are functions of per-block sums (Σr, Σ(r − c)², Σmin(r, 0)²,
Σlog(1 + r)), so the blocks are summed once (S × N numbers each); the sums over every subset
of the first S/2 blocks and of the last S/2 are tabulated (2 × 2^(S/2) rows), so a half-set's
sums are two table rows added; and each half-set's metric is computed once: it is the
in-sample set of one split and the out-of-sample set of its complementary split (in
``combinations`` order the complement of half-set h is half-set C − 1 − h). 200 trials ×
2,520 daily returns with S = 16 take tens of milliseconds, not 12,870 passes over the raw
returns (``bench/bench_overfitting.py``). A callable metric cannot
use block sums: it is called on the raw rows of each of the C(S, S/2) half-sets.

Pure numpy and the standard library, on the values it is given: storing and aligning the
series is the ledger's job.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from ..errors import ValidationError
from ..records.arguments import MAX_PARTITIONS as _MAX_PARTITIONS
from .returns import check_periods_per_year

__all__ = [
    "DEFAULT_PARTITIONS",
    "MAX_PARTITIONS",
    "METRICS",
    "Overfitting",
    "cscv_splits",
    "probability_of_backtest_overfitting",
]

#: The paper's choice: 12,870 splits, each half of 8 blocks.
DEFAULT_PARTITIONS = 16
#: C(20, 10) = 184,756 splits; beyond that the number of splits (×3.7 per +2) is not worth it.
MAX_PARTITIONS = _MAX_PARTITIONS
#: The metrics computed from block sums: name → what it is.
METRICS = {
    "sharpe": "mean / sample std (ddof 1) × √periods_per_year, as perfledger.returns.from_returns",
    "sortino": "mean / √mean(min(r, 0)²) × √periods_per_year, as from_returns",
    "mean": "mean per-period return",
    "total_return": "∏(1 + r) − 1 over the half's periods (simple returns, each ≥ −1)",
}
#: A Σ(r − mean)² below this share of Σ(r − c)² is rounding noise of Σx² − (Σx)²/n: the
#: half's returns are constant (a std below ~1e-7 of their spread around the trial's mean),
#: so its Sharpe is undefined rather than a quotient of rounding errors.
_VAR_RTOL = 64 * np.finfo(float).eps
_CHUNK_VALUES = 1 << 16  # values per chunk of splits (512 KiB): a chunk's work stays in cache


def _fail(argument: str, message: str) -> ValidationError:
    return ValidationError.of(argument, message)


@dataclass(frozen=True, eq=False)
class Overfitting:
    """The result of :func:`probability_of_backtest_overfitting` (one entry per split in
    each array, in the order of :func:`cscv_splits`; arrays are read-only).

    ``pbo`` the share of splits whose in-sample winner ranks at or below the out-of-sample
    median (λ ≤ 0); ``logits`` λ per split; ``winners`` the in-sample winner's column;
    ``oos_rank`` its average rank out of sample (1 worst … N best); ``is_performance`` and
    ``oos_performance`` the winner's metric in and out of sample; ``slope``, ``intercept``,
    ``r_squared`` the OLS line oos = intercept + slope · is (NaN when the in-sample values do
    not vary; R² NaN when either side does not vary); ``prob_oos_loss`` the share of splits
    whose winner's out-of-sample metric is below 0. ``n_periods`` periods were used after
    dropping the ``n_dropped`` oldest, in ``partitions`` blocks of ``block_size``."""

    pbo: float
    logits: np.ndarray
    winners: np.ndarray
    oos_rank: np.ndarray
    is_performance: np.ndarray
    oos_performance: np.ndarray
    slope: float
    intercept: float
    r_squared: float
    prob_oos_loss: float
    n_trials: int
    n_periods: int
    n_dropped: int
    partitions: int
    block_size: int
    metric: str
    trials: tuple[str, ...]

    @property
    def n_splits(self) -> int:
        return int(self.logits.size)


def cscv_splits(partitions: int) -> np.ndarray:
    """The in-sample block indices of every split, C(S, S/2) × S/2, in
    ``itertools.combinations(range(S), S // 2)`` order (read-only); the out-of-sample blocks
    are the rest."""
    return _splits(_check_partitions(partitions))


@functools.cache
def _splits(s: int) -> np.ndarray:
    return _readonly(np.array(list(combinations(range(s), s // 2)), dtype=np.intp).reshape(-1, s // 2))


def _check_partitions(partitions: Any) -> int:
    if (
        isinstance(partitions, bool)
        or not isinstance(partitions, numbers.Integral)
        or partitions < 2
        or partitions % 2
        or partitions > MAX_PARTITIONS
    ):
        raise _fail(
            "partitions",
            f"partitions={partitions!r} must be an even integer from 2 to {MAX_PARTITIONS} "
            f"(the number of blocks S; {DEFAULT_PARTITIONS} is the paper's choice)",
        )
    return int(partitions)


def _matrix(returns: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    """A finite T × N float matrix and the trials' names (a DataFrame's columns, else
    ``"0" … "N-1"``), or a ValidationError naming ``returns``."""
    columns = getattr(returns, "columns", None)
    if isinstance(returns, str | bytes) or returns is None:
        raise _fail("returns", f"returns must be a T × N matrix of numbers, got {type(returns).__name__}")
    try:
        arr = np.asarray(returns, dtype=float)
    except (TypeError, ValueError) as exc:
        raise _fail("returns", f"returns must be a T × N matrix of numbers: {exc}") from None
    if arr.ndim != 2:
        raise _fail("returns", f"returns must be a T × N matrix (periods × trials), got shape {arr.shape}")
    names = tuple(str(c) for c in columns) if columns is not None else tuple(map(str, range(arr.shape[1])))
    if arr.shape[1] < 2:
        raise _fail(
            "returns",
            f"returns has {arr.shape[1]} trial(s) (columns); PBO compares trials: at least 2 are needed",
        )
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))
        i, j = map(int, bad[0])
        raise _fail(
            "returns",
            f"returns[{i}, {j}]={arr[i, j]!r} (trial {names[j]!r}) is not a finite number "
            f"({len(bad)} non-finite value(s)); align the trials on their common periods first",
        )
    return arr, names


def _metric(metric: Any) -> tuple[str, Callable[[np.ndarray], Any] | None]:
    if isinstance(metric, str):
        if metric not in METRICS:
            raise _fail("metric", f"metric={metric!r} is not one of {sorted(METRICS)} (or pass a callable)")
        return metric, None
    if callable(metric):
        return str(getattr(metric, "__name__", type(metric).__name__)), metric
    raise _fail("metric", f"metric={metric!r} must be one of {sorted(METRICS)} or a callable")


class _HalfSums:
    """Σ over a half-set's blocks of per-block values, by subset tables: the S blocks are two
    groups of S/2, the sums over every subset of each group (2^(S/2) rows) are built once,
    and a half-set's sum is one row of each table added (2 gathers and 1 add per split, not
    S/2; no BLAS, whose threaded matrix product stalls on a busy machine)."""

    def __init__(self, splits: np.ndarray, partitions: int):
        g = partitions // 2
        bits = np.int64(1) << np.arange(partitions, dtype=np.int64)
        masks = np.zeros((splits.shape[0], partitions), dtype=np.int64)
        np.put_along_axis(masks, splits, bits[splits], axis=1)
        whole = masks.sum(axis=1)
        self.group = g
        self.low = (whole & ((1 << g) - 1)).astype(np.intp)
        self.high = (whole >> g).astype(np.intp)

    def tables(self, per_block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = []
        for part in (per_block[: self.group], per_block[self.group:]):
            table = np.zeros((1 << self.group, per_block.shape[1]))
            for b in range(self.group):
                table[1 << b: 2 << b] = table[: 1 << b] + part[b]
            out.append(table)
        return out[0], out[1]


@functools.cache
def _half_sums(partitions: int) -> _HalfSums:
    return _HalfSums(_splits(partitions), partitions)


def _add(tables: tuple[np.ndarray, np.ndarray], halves: _HalfSums, rows: slice) -> np.ndarray:
    low, high = tables
    out = low[halves.low[rows]]
    out += high[halves.high[rows]]
    return out


def _block_metric(
    name: str, x: np.ndarray, splits: np.ndarray, partitions: int, block: int, ppy: float,
    names: tuple[str, ...],
) -> Callable[[slice], np.ndarray]:
    """From per-block sums (computed here, once), the function giving the metric of every
    trial on the half-sets of a range of splits (→ k × N)."""
    halves = _half_sums(partitions)
    n = x.shape[1]
    shaped = x.reshape(partitions, block, n)
    count = float(partitions // 2 * block)
    root = math.sqrt(ppy)
    if name == "total_return":
        if (x < -1.0).any():
            i, j = map(int, np.argwhere(x < -1.0)[0])
            raise _fail("returns", f"returns[{i}, {j}]={x[i, j]!r} (trial {names[j]!r}) is below -1: "
                                   "a simple return cannot lose more than everything")
        ruin = shaped == -1.0  # log(0): a half holding one is a total loss, -1
        logs = halves.tables(np.log1p(np.where(ruin, 0.0, shaped)).sum(axis=1))
        ruined = halves.tables(ruin.sum(axis=1).astype(float))
        return lambda sp: np.where(_add(ruined, halves, sp) > 0, -1.0, np.expm1(_add(logs, halves, sp)))
    if name == "mean":
        sums = halves.tables(shaped.sum(axis=1))
        return lambda sp: _add(sums, halves, sp) / count
    if name == "sortino":
        sums = halves.tables(shaped.sum(axis=1))
        down = halves.tables((np.minimum(shaped, 0.0) ** 2).sum(axis=1))

        def sortino(sp: slice) -> np.ndarray:
            downside = np.sqrt(_add(down, halves, sp) / count)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(downside > 0, _add(sums, halves, sp) / count / downside * root, np.nan)

        return sortino
    # sharpe, from sums of r − c with c the trial's overall mean, so that
    # Σ(r − c)² − (Σ(r − c))²/n does not cancel
    shift = x.mean(axis=0)
    dev = shaped - shift
    d1 = halves.tables(dev.sum(axis=1))
    d2 = halves.tables(np.einsum("sbn,sbn->sn", dev, dev))
    total = shift * count
    scale = root * math.sqrt(count - 1.0) / count

    def sharpe(sp: slice) -> np.ndarray:
        s1 = _add(d1, halves, sp)
        s2 = _add(d2, halves, sp)
        m2 = s1 * s1
        m2 /= -count
        m2 += s2  # Σ(r − mean)² of the half
        # constant (or all-zero) returns on a half: m2 is rounding noise of s2; two reductions
        # rule it out for the whole chunk in the usual case
        flat = m2 <= _VAR_RTOL * s2 if m2.min() <= _VAR_RTOL * s2.max() else None
        s1 += total  # Σr
        with np.errstate(divide="ignore", invalid="ignore"):  # flat halves: NaN below
            np.sqrt(m2, out=m2)
            s1 /= m2
        s1 *= scale  # mean / std(ddof 1) × √ppy = Σr / √m2 × √(n − 1) / n × √ppy
        if flat is not None and flat.any():
            s1[flat] = np.nan
        return s1

    return sharpe


def _callable_metric(
    fn: Callable[[np.ndarray], Any], x: np.ndarray, splits: np.ndarray, partitions: int, block: int
) -> Callable[[slice], np.ndarray]:
    """The function calling ``fn`` on the raw rows of each half-set of a chunk."""
    shaped = x.reshape(partitions, block, x.shape[1])
    n = x.shape[1]

    def call(rows: slice) -> np.ndarray:
        chunk = splits[rows]
        out = np.empty((chunk.shape[0], n))
        for k, chosen in enumerate(chunk):
            values = np.asarray(fn(shaped[chosen].reshape(-1, n)), dtype=float)
            if values.shape != (n,):
                raise _fail("metric", f"metric returned shape {values.shape}; it must return one number "
                                      f"per trial (shape ({n},)) for a (periods × trials) matrix")
            out[k] = values
        return out

    return call


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """OLS y = intercept + slope · x and R² (centred sums; NaN where undefined)."""
    dx, dy = x - x.mean(), y - y.mean()  # sums, not BLAS dots: those stall on a busy machine
    sxx, syy, sxy = float((dx * dx).sum()), float((dy * dy).sum()), float((dx * dy).sum())
    if sxx <= 0:
        return math.nan, math.nan, math.nan
    slope = sxy / sxx
    intercept = float(y.mean()) - slope * float(x.mean())
    r2 = sxy * sxy / (sxx * syy) if syy > 0 else math.nan
    return slope, intercept, r2


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def probability_of_backtest_overfitting(
    returns: Any,
    partitions: int = DEFAULT_PARTITIONS,
    metric: str | Callable[[np.ndarray], Any] = "sharpe",
    periods_per_year: float = 252,
) -> Overfitting:
    """PBO of a sweep by CSCV (module docstring: the procedure, its ties, its source).

    ``returns``: a T × N matrix (array or DataFrame; columns name the trials) of per-period
    returns of N ≥ 2 trials on the same T periods, no NaN or inf (align on common dates
    first). ``partitions``: S, even, 2 … 20; T must give every block at least one period and
    every half at least two (T ≥ S, and T ≥ 4 for S = 2). ``metric``: a name of
    :data:`METRICS` (computed from block sums), or a callable taking a (periods × N) array
    and returning N scores, higher better (called once per half-set). ``periods_per_year``
    annualises ``sharpe`` and ``sortino`` (it changes no rank, only the reported values).

    A ValidationError names the argument: bad ``returns``, too few periods (saying how many
    are needed), odd or out-of-range ``partitions``, an unknown ``metric``, or a metric that
    is undefined on some half (a trial with constant returns there has no Sharpe)."""
    x, names = _matrix(returns)
    s = _check_partitions(partitions)
    label, fn = _metric(metric)
    ppy = check_periods_per_year(periods_per_year)
    t, n = x.shape
    needed = 4 if s == 2 else s
    if t < needed:
        raise _fail(
            "returns",
            f"returns has {t} common period(s); partitions={s} needs at least {needed} "
            "(one period per block and two per half; more periods per block give steadier "
            "halves: 2,520 daily returns in 16 blocks give 157 a block)",
        )
    dropped = t % s
    x = x[dropped:]
    block = x.shape[0] // s
    splits = cscv_splits(s)
    n_splits = splits.shape[0]
    if fn is None:
        half_metric = _block_metric(label, x, splits, s, block, ppy, names)
    else:
        half_metric = _callable_metric(fn, x, splits, s, block)
    # A half-set is the in-sample set of one split and the out-of-sample set of the
    # complementary split; in combinations order the complement of half-set h is C − 1 − h.
    # So half-sets are scored in mirrored chunks (rows lo..hi and their complements), each
    # scored once, every step in cache, nothing C × N kept.
    winners = np.empty(n_splits, dtype=np.intp)
    is_perf = np.empty(n_splits)
    oos_perf = np.empty(n_splits)
    rank = np.empty(n_splits)
    chunk = max(1, _CHUNK_VALUES // n)
    half = n_splits // 2

    def scored(lo: int, hi: int) -> np.ndarray:
        part = half_metric(slice(lo, hi))
        if not np.isfinite(part).all():
            k, j = map(int, np.argwhere(~np.isfinite(part))[0])
            raise _fail(
                "returns",
                f"the {label} of trial {names[j]!r} is undefined on the half made of blocks "
                f"{splits[lo + k].tolist()} (e.g. constant returns there); PBO needs the metric "
                "of every trial on every half",
            )
        return part

    def judge(rows: np.ndarray, ins: np.ndarray, outs: np.ndarray) -> None:
        win = np.argmax(ins, axis=1)
        at = np.arange(win.size)
        w = outs[at, win][:, None]
        winners[rows] = win
        is_perf[rows] = ins[at, win]
        oos_perf[rows] = w[:, 0]
        rank[rows] = np.count_nonzero(outs < w, axis=1) + (np.count_nonzero(outs == w, axis=1) + 1) / 2.0

    for lo in range(0, half, chunk):
        hi = min(lo + chunk, half)
        first = scored(lo, hi)
        mirror = scored(n_splits - hi, n_splits - lo)[::-1]  # row i: the complement of lo + i
        judge(np.arange(lo, hi), first, mirror)
        judge(np.arange(n_splits - 1 - lo, n_splits - 1 - hi, -1), mirror, first)
    logits = np.log(rank / (n + 1.0 - rank))
    slope, intercept, r2 = _line(is_perf, oos_perf)
    return Overfitting(
        pbo=float(np.mean(logits <= 0.0)),
        logits=_readonly(logits),
        winners=_readonly(winners),
        oos_rank=_readonly(rank),
        is_performance=_readonly(is_perf),
        oos_performance=_readonly(oos_perf),
        slope=slope,
        intercept=intercept,
        r_squared=r2,
        prob_oos_loss=float(np.mean(oos_perf < 0.0)),
        n_trials=n,
        n_periods=int(x.shape[0]),
        n_dropped=int(dropped),
        partitions=s,
        block_size=int(block),
        metric=label,
        trials=names,
    )
