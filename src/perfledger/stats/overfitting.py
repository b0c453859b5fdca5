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
Σlog(1 + r)), so the blocks are summed once (S × N numbers each), and the sums over every
subset of the first S/2 blocks and of the last S/2 are tabulated (2 × 2^(S/2) rows). A
half-set is a subset of each group, so a chunk of half-sets is one broadcast add of two
small slices of the tables, written into a buffer reused chunk after chunk. Half-sets are
visited beside their complements (class ``_Pairs``), so each half-set's metric is computed
once: it is the in-sample set of one split and the out-of-sample set of the complementary
one. The Sharpe ratio is ranked by its signed square (Σr·|Σr| / (n·Σ(r − mean)²), the same
order), so the square root is taken of the 2 × C winners only, not of the C × N scores.
Each chunk's in-sample winner is the row's argmax, and its out-of-sample rank two counts
(below it, equal to it) against its score written out row by row. Past 10⁶ scores the
chunks are scored by two threads (numpy releases the GIL in its loops), each with its own
buffers, with the same result bit for bit.
200 trials × 2,520 daily returns with S = 16 take a few milliseconds per million scores,
not 12,870 passes over the raw returns (``bench/bench_overfitting.py``). A callable metric
cannot use block sums: it is called on the raw rows of each of the C(S, S/2) half-sets.

Pure numpy and the standard library, on the values it is given: storing and aligning the
series is the ledger's job.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import threading
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
_CHUNK_VALUES = 1 << 16  # scores per chunk of half-sets (512 KiB a buffer): measured best (1 << 14: slower)
_THREADED_VALUES = 1 << 20  # scores (half-sets × trials) from which two threads score them


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
    # a finite sum has no NaN or inf among its terms: one pass, no T × N temporary (an
    # overflowing sum of finite values falls through to the exact test)
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(arr.sum())
    if not math.isfinite(total) and not np.isfinite(arr).all():
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


class _Pairs:
    """The C(S, S/2) half-sets as pairs of subsets: the S blocks are two groups of g = S/2
    (the first g, the last g); a half-set is a subset ``lo`` of the first group and ``hi``
    of the second with |lo| + |hi| = g, and its complement is (full − lo, full − hi).

    The half-sets are visited in *pair groups*: all ``lo`` with k members (``los``) against
    all ``hi`` with g − k (``his``), k < g/2, and beside them their complements
    (``full − los`` × ``full − his``, the half-sets with g − k and k members), aligned
    element by element; for even g the middle group (k = g/2) is its own complement
    group, so its first half of ``lo`` values goes with the second half. Every half-set is
    visited once, and its metric, a sum over blocks, is the outer sum of two small tables
    (one row per subset of a group, 2^g rows) with no gather over the C × N result.
    ``index`` maps ``lo | hi << g`` to the half-set's position in ``combinations`` order."""

    def __init__(self, splits: np.ndarray, partitions: int):
        g = partitions // 2
        bits = np.int64(1) << np.arange(partitions, dtype=np.int64)
        masks = np.zeros((splits.shape[0], partitions), dtype=np.int64)
        np.put_along_axis(masks, splits, bits[splits], axis=1)
        whole = masks.sum(axis=1)
        self.group = g
        self.index = np.full(1 << partitions, -1, dtype=np.intp)
        self.index[whole] = np.arange(splits.shape[0])
        full = (1 << g) - 1
        by_count = [np.array([m for m in range(1 << g) if m.bit_count() == k], dtype=np.intp)
                    for k in range(g + 1)]
        self.groups: list[tuple[np.ndarray, np.ndarray]] = [
            (by_count[k], by_count[g - k]) for k in range((g + 1) // 2)]
        if g % 2 == 0:
            middle = by_count[g // 2]
            self.groups.append((middle[: middle.size // 2], middle))
        self.full = full
        #: per pair group, the positions of its half-sets and of their complements
        self.at = [(self.positions(lo, hi), self.positions(full - lo, full - hi)) for lo, hi in self.groups]
        # The second group's table is kept twice: its rows by member count, then mask (the
        # order of ``by_count``), and that reversed. A group's ``hi`` is then a slice of the
        # first, and ``full − hi`` (the same count's masks, descending) a slice of the second:
        # views, no gather, and both read forward (numpy adds a reversed view ~1.5x slower).
        self.order = np.concatenate(by_count)
        start = [int(v) for v in np.cumsum([0] + [c.size for c in by_count])]
        last = 1 << g
        self.rows: list[tuple[tuple[int, slice], tuple[int, slice]]] = []
        for _, hi in self.groups:
            j, k = hi[0].bit_count(), g - hi[0].bit_count()
            self.rows.append(((1, slice(start[j], start[j + 1])),
                              (2, slice(last - start[k + 1], last - start[k]))))

    def tables(self, per_block: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per-block values (S × N) → the sums over every subset of each group (2^g × N):
        the first group's row = the subset's bit mask, the second's in ``order`` and
        reversed (a group's ``hi`` and ``full − hi`` are the slices ``rows[k]`` of them)."""
        out = []
        for part in (per_block[: self.group], per_block[self.group:]):
            table = np.zeros((1 << self.group, per_block.shape[1]))
            for b in range(self.group):
                table[1 << b: 2 << b] = table[: 1 << b] + part[b]
            out.append(table)
        high = out[1][self.order]
        return out[0], high, np.ascontiguousarray(high[::-1])

    def positions(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The ``combinations`` positions of the half-sets lo × hi, row-major."""
        return self.index[(lo[:, None] | (hi[None, :] << self.group)).ravel()]


@functools.cache
def _pairs(partitions: int) -> _Pairs:
    return _Pairs(_splits(partitions), partitions)


def _outer(tables: tuple[np.ndarray, ...], lo: np.ndarray, hi: tuple[int, slice], out: np.ndarray) -> None:
    """``out`` (|lo|·|hi| × N) = Σ over each half-set lo × hi (row-major) for every trial:
    one broadcast add of a small gather and a slice (``hi``: which second-group table and
    its rows, ``_Pairs.rows``), written in place."""
    low = tables[0]
    rows = tables[hi[0]][hi[1]]
    np.add(low[lo][:, None, :], rows[None, :, :], out=out.reshape(lo.size, rows.shape[0], -1))


class _HalfMetric:
    """A metric on half-sets: ``score(lo, hi, out)`` writes each half-set's *score* of every
    trial into ``out`` (m × N, in place: no temporary the size of a chunk is allocated, so
    nothing is paged in and out chunk after chunk) and says whether every score is known to
    be finite; a score orders the trials exactly as the metric does, and ``value(scores)``
    turns the winners' scores into the metric (Sharpe's score is its signed square up to a
    factor: no square root over the C × N values, only over the winners')."""

    def score(self, lo: np.ndarray, hi: np.ndarray, rows: tuple[int, slice], out: np.ndarray,
              spare: tuple[np.ndarray, ...]) -> bool:
        """``spare``: two float buffers of at least ``out.size`` values, the caller's thread's."""
        raise NotImplementedError

    def value(self, scores: np.ndarray) -> np.ndarray:
        return scores


class _Sharpe(_HalfMetric):
    """mean / std (ddof 1) × √ppy from block sums (raw, or of r − c: see ``__init__``).
    Score: Σr·|Σr| / (n·Σ(r − mean)²), the signed square of Sharpe / (√ppy · √((n − 1)/n)),
    monotone in the Sharpe."""

    def __init__(self, pairs: _Pairs, x: np.ndarray, partitions: int, block: int, ppy: float):
        """``x``: the T × N returns (T = partitions × block), any memory layout; not changed.

        Raw per-block sums (Σr, Σr²) when every trial's mean is within half its standard
        deviation (daily returns: a twentieth): n·Σr² − (Σr)² then loses at most a bit, no
        copy of the returns is made (a DataFrame's trial-major values are summed where they
        lie), and the score is two passes cheaper (Σr·|Σr| from (Σr)²). Otherwise sums of
        r − c, c the trial's mean, so that the subtraction does not cancel, from one copy
        in which the deviations are computed in place (a fresh array of megabytes is paged
        in, which costs more than the arithmetic on a busy machine: one, not three)."""
        n, count = x.shape[1], float(partitions // 2 * block)
        if x.flags.c_contiguous:
            rows = x.reshape(partitions, block, n)
            sums, squares = rows.sum(axis=1), np.einsum("sbn,sbn->sn", rows, rows)
        else:  # trial-major (a DataFrame's values): each series' blocks are contiguous
            series = x.T.reshape(n, partitions, block)  # a view (a copy only if it cannot be)
            sums, squares = series.sum(axis=2).T, np.einsum("nsb,nsb->sn", series, series)
        periods = float(partitions * block)
        shift = sums.sum(axis=0) / periods
        variance = (squares.sum(axis=0) - periods * shift * shift) / max(1.0, periods - 1.0)
        self.raw = bool(np.all(shift * shift <= 0.25 * variance))
        if self.raw:
            self.d1 = pairs.tables(sums)  # Σr
            self.d2 = pairs.tables(squares * count)  # n·Σr²
            # each block's Σ(r − its mean)², less a bound on the rounding of Σr² − (Σr)²/b
            within = squares - sums * sums / block - 2.0 * (block + 2) * np.finfo(float).eps * squares
        else:
            dev = np.array(x, dtype=float, order="C").reshape(partitions, block, n)
            dev -= shift
            sums = dev.sum(axis=1)
            self.d1 = pairs.tables(sums)  # Σ(r − c)
            self.d2 = pairs.tables(np.einsum("sbn,sbn->sn", dev, dev) * count)  # n·Σ(r − c)²
            dev -= (sums / block)[:, None, :]  # each block about its own mean
            within = np.einsum("sbn,sbn->sn", dev, dev)
        # above every half's n·Σ(r − c)²: one reduction rules out a flat half in a chunk
        self.top = float(self.d2[0].max() + self.d2[1].max())
        # ... and none at all is needed when every block of every trial varies: a half's
        # n·Σ(r − mean)² is at least n·Σ over its S/2 blocks of their own Σ(r − block mean)²
        floor = count * (partitions // 2) * max(0.0, float(within.min()))
        self.may_be_flat = not floor > 4 * _VAR_RTOL * self.top  # (4: room for rounding)
        self.total = shift * count
        self.factor = math.sqrt(ppy) * math.sqrt((count - 1.0) / count)

    def score(self, lo: np.ndarray, hi: np.ndarray, rows: tuple[int, slice], out: np.ndarray,
              spare: tuple[np.ndarray, ...]) -> bool:
        m2, tmp = (b[: out.size].reshape(out.shape) for b in spare[:2])
        _outer(self.d1, lo, rows, out)
        _outer(self.d2, lo, rows, m2)
        np.abs(out, out=tmp)  # |Σ(r − c)|
        if self.raw:  # Σr·|Σr|, bit for bit copysign((Σr)², Σr) (numpy's copysign has no SIMD loop)
            out *= tmp
            tmp *= tmp
        else:
            tmp *= tmp
        m2 -= tmp  # n·Σ(r − mean)² of the half
        # constant (or all-zero) returns on a half: m2 is rounding noise of n·Σ(r − c)²
        flat = None
        if self.may_be_flat and m2.min() <= _VAR_RTOL * self.top:
            _outer(self.d2, lo, rows, tmp)
            flat = m2 <= _VAR_RTOL * tmp
        if not self.raw:
            out += self.total  # Σr
            np.abs(out, out=tmp)
            out *= tmp
        out /= m2  # a flat half: NaN below (the caller silences numpy's warnings)
        if flat is None or not flat.any():
            return True
        out[flat] = np.nan
        return False

    def value(self, scores: np.ndarray) -> np.ndarray:
        return np.copysign(np.sqrt(np.abs(scores)), scores) * self.factor


class _Blocks(_HalfMetric):
    """mean, sortino and total_return from per-block sums, as :data:`METRICS` says."""

    def __init__(self, name: str, pairs: _Pairs, shaped: np.ndarray, count: float, ppy: float):
        self.name, self.count = name, count
        self.factor = math.sqrt(ppy) / math.sqrt(count)  # Σr / √Σmin(r, 0)² / √n × √ppy
        if name == "total_return":
            ruin = shaped == -1.0  # log(0): a half holding one is a total loss, -1
            self.logs = pairs.tables(np.log1p(np.where(ruin, 0.0, shaped)).sum(axis=1))
            self.ruined = pairs.tables(ruin.sum(axis=1).astype(float))
            return
        self.sums = pairs.tables(shaped.sum(axis=1))
        if name == "sortino":
            self.down = pairs.tables((np.minimum(shaped, 0.0) ** 2).sum(axis=1))

    def score(self, lo: np.ndarray, hi: np.ndarray, rows: tuple[int, slice], out: np.ndarray,
              spare: tuple[np.ndarray, ...]) -> bool:
        if self.name == "total_return":
            ruined = np.empty_like(out)
            _outer(self.ruined, lo, rows, ruined)
            _outer(self.logs, lo, rows, out)
            np.expm1(out, out=out)
            out[ruined > 0] = -1.0
            return False
        _outer(self.sums, lo, rows, out)
        if self.name == "mean":
            return True
        downside = np.empty_like(out)
        _outer(self.down, lo, rows, downside)
        np.sqrt(downside, out=downside)
        out /= downside
        out[downside <= 0] = np.nan
        return False

    def value(self, scores: np.ndarray) -> np.ndarray:
        if self.name == "mean":
            return scores / self.count
        return scores * self.factor if self.name == "sortino" else scores


_kept = threading.local()


def _work_buffers(size: int, workers: int) -> list[tuple[np.ndarray, ...]]:
    """Per worker, four float buffers and one bool buffer of ``size`` values, kept by the
    calling thread from call to call (33 bytes per value: about 2 MB per worker for 200
    trials, and a chunk is never fewer than one row of half-sets, so 70 × N values for
    S = 16 past 936 trials): fresh ones would be paged in on every call, which on a busy
    machine costs as much as filling them. The workers' threads are started per call, so
    their buffers are the caller's, handed to them."""
    held: list[tuple[np.ndarray, ...]] = getattr(_kept, "buffers", [])
    if len(held) < workers or held[0][0].size < size:
        size = max(size, held[0][0].size if held else 0)
        held = [(*(np.empty(size) for _ in range(4)), np.empty(size, dtype=bool))
                for _ in range(max(workers, len(held)))]
        _kept.buffers = held
    return held


def _workers(values: int) -> int:
    """Threads scoring the half-sets: two when there is work enough (numpy releases the GIL
    in its loops, so two chunks are scored at once) and two CPUs to run them; one otherwise
    (a thread's start, ~0.1 ms, is not repaid below ~10⁶ scores)."""
    if values < _THREADED_VALUES:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(2, cpus)


def _run_threaded(
    tasks: list[tuple[int, int]], run: Callable[[int, int, tuple[np.ndarray, ...]], None],
    buffers: list[tuple[np.ndarray, ...]],
) -> None:
    """``run(*task, buffers[i])`` for every task, by ``len(buffers)`` threads taking the next
    task as they finish one (a thread slowed by the machine's load takes fewer). Every task
    writes its own splits, so nothing is locked. A task that raises stops its thread; the
    others stop at the first task past it, so the error raised is the one of the earliest
    failing task: the one a single thread would raise."""
    order = iter(range(len(tasks)))  # next() on it is atomic under the GIL
    failed: dict[int, BaseException] = {}

    def work(buffer: tuple[np.ndarray, ...]) -> None:
        with np.errstate(divide="ignore", invalid="ignore"):  # per thread; NaN refused in scored()
            for i in order:
                if failed and i > min(failed):
                    return
                try:
                    run(*tasks[i], buffer)
                except BaseException as exc:  # re-raised in the caller's thread below
                    failed[i] = exc
                    return

    threads = [threading.Thread(target=work, args=(b,), name="perfledger-pbo", daemon=True)
               for b in buffers[1:]]
    for t in threads:
        t.start()
    try:
        work(buffers[0])
    finally:
        for t in threads:
            t.join()
    if failed:
        raise failed[min(failed)]


def _block_metric(
    name: str, x: np.ndarray, pairs: _Pairs, partitions: int, block: int, ppy: float,
    names: tuple[str, ...],
) -> _HalfMetric:
    """The metric on half-sets from per-block sums (computed here, once)."""
    if name == "sharpe":
        return _Sharpe(pairs, x, partitions, block, ppy)
    shaped = np.ascontiguousarray(x).reshape(partitions, block, x.shape[1])
    count = float(partitions // 2 * block)
    if name == "total_return" and (x < -1.0).any():
        i, j = map(int, np.argwhere(x < -1.0)[0])
        raise _fail("returns", f"returns[{i}, {j}]={x[i, j]!r} (trial {names[j]!r}) is below -1: "
                               "a simple return cannot lose more than everything")
    return _Blocks(name, pairs, shaped, count, ppy)


class _Called(_HalfMetric):
    """A callable metric, called on the raw rows of each half-set (its blocks in order,
    oldest first)."""

    def __init__(self, fn: Callable[[np.ndarray], Any], x: np.ndarray, partitions: int, block: int):
        self.fn, self.g, self.n = fn, partitions // 2, x.shape[1]
        self.shaped = np.ascontiguousarray(x).reshape(partitions, block, x.shape[1])

    def score(self, lo: np.ndarray, hi: np.ndarray, rows: tuple[int, slice], out: np.ndarray,
              spare: tuple[np.ndarray, ...]) -> bool:
        g, n = self.g, self.n
        for k, (a, b) in enumerate((int(a), int(b)) for a in lo for b in hi):
            chosen = [i for i in range(g) if a >> i & 1] + [g + i for i in range(g) if b >> i & 1]
            values = np.asarray(self.fn(self.shaped[chosen].reshape(-1, n)), dtype=float)
            if values.shape != (n,):
                raise _fail("metric", f"metric returned shape {values.shape}; it must return one number "
                                      f"per trial (shape ({n},)) for a (periods × trials) matrix")
            out[k] = values
        return False


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


def _refuse_indistinguishable(x: np.ndarray, label: str) -> None:
    """A ValidationError naming ``returns`` when every trial is the same bet (identical
    columns; for the scale-free "sharpe" and "sortino", positive multiples of one another):
    every split is then a tie, no selection was made, and the tie rule would turn "no choice"
    into PBO = 1, "Overfit". Undefined, said in one line, instead.

    The usual sweep differs on its first period already: that row decides it, and the whole
    matrix (a scaled copy, several temporaries of T × N) is compared only when it does not
    (the same test: a row that fails it fails the whole)."""
    scaled = label in ("sharpe", "sortino")
    if scaled:
        scale = np.maximum(x.max(axis=0), -x.min(axis=0))  # max |x| per trial, no T × N temporary
        if (scale == 0).any():
            return
        top = 1.0  # max |x / scale|: the trial holding it gives exactly 1
    else:
        scale = None
        top = max(float(x.max()), -float(x.min()))
    atol = 1e-12 * max(top, 1e-300)
    row = x[0] / scale if scaled else x[0]
    if (np.abs(row - row[0]) > atol).any():
        return
    y = x / scale if scaled else x
    if np.allclose(y, y[:, :1], rtol=0.0, atol=atol):
        raise _fail("returns", f"the {x.shape[1]} trials are indistinguishable (the same returns"
                               f"{', up to scale' if scaled else ''}): no trial was selected over "
                               "another, so the probability of backtest overfitting is undefined "
                               "(the effective number of trials is 1)")


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
    _refuse_indistinguishable(x, label)
    dropped = t % s
    x = x[dropped:]
    block = x.shape[0] // s
    splits = cscv_splits(s)
    n_splits = splits.shape[0]
    pairs = _pairs(s)
    # chunks of about _CHUNK_VALUES scores: whole rows of lo against every hi of a group
    most = max(n * his.size * max(1, _CHUNK_VALUES // (n * his.size)) for _, his in pairs.groups)
    if fn is None:
        metric_of = _block_metric(label, x, pairs, s, block, ppy, names)
    else:
        metric_of = _Called(fn, x, s, block)
    # Every half-set is the in-sample set of one split and the out-of-sample set of the
    # complementary split: half-sets are scored in chunks beside their complements (the pair
    # groups of _Pairs), each scored once, into two buffers reused chunk after chunk (every
    # step in cache, nothing C × N kept).
    winners = np.empty(n_splits, dtype=np.intp)
    is_score = np.empty(n_splits)
    oos_score = np.empty(n_splits)
    rank = np.empty(n_splits)
    count_type = np.uint16 if n < 1 << 16 else np.int64  # a count of trials, summed in cache

    def scored(lo: np.ndarray, hi: np.ndarray, hi_rows: tuple[int, slice], at: np.ndarray, buffer: np.ndarray,
               spare: tuple[np.ndarray, ...]) -> np.ndarray:
        part = buffer[: at.size * n].reshape(at.size, n)
        if not metric_of.score(lo, hi, hi_rows, part, spare) and not np.isfinite(part).all():
            k, j = map(int, np.argwhere(~np.isfinite(part))[0])
            raise _fail(
                "returns",
                f"the {label} of trial {names[j]!r} is undefined on the half made of blocks "
                f"{splits[at[k]].tolist()} (e.g. constant returns there); PBO needs the metric "
                "of every trial on every half",
            )
        return part

    def judge(at: np.ndarray, ins: np.ndarray, outs: np.ndarray, spare: np.ndarray,
              flags: np.ndarray) -> None:
        """Splits ``at``: in-sample scores ``ins``, out-of-sample ``outs`` (m × N each);
        ``spare`` and ``flags`` m × N buffers. The winner's out-of-sample score is written
        out row by row (one broadcast fill) before the comparisons: numpy compares two
        arrays of one shape ~3x faster than an array with a broadcast column."""
        m = at.size
        win = np.argmax(ins, axis=1)
        rows = np.arange(m)
        w = outs[rows, win]
        wide = spare[: m * n].reshape(m, n)
        wide[...] = w[:, None]
        flag = flags[: m * n].reshape(m, n)
        np.less(outs, wide, out=flag)
        below = flag.view(np.uint8).sum(axis=1, dtype=count_type)
        np.equal(outs, wide, out=flag)
        if np.count_nonzero(flag) == m:  # only the winner has its value: the usual case
            rank[at] = below + 1.0
        else:
            rank[at] = below + (flag.view(np.uint8).sum(axis=1, dtype=count_type) + 1) / 2.0
        winners[at] = win
        is_score[at] = ins[rows, win]
        oos_score[at] = w

    full = pairs.full
    tasks = [(k, a) for k, (los, his) in enumerate(pairs.groups)
             for a in range(0, los.size, max(1, _CHUNK_VALUES // (n * his.size)))]

    def run(k: int, a: int, buffers: tuple[np.ndarray, ...]) -> None:
        """One chunk: rows ``a``.. of pair group ``k`` and their complements."""
        (los, his), (here_all, there_all) = pairs.groups[k], pairs.at[k]
        lo = los[a: a + max(1, _CHUNK_VALUES // (n * his.size))]
        rows = slice(a * his.size, (a + lo.size) * his.size)
        here, there = here_all[rows], there_all[rows]
        his_rows, mirror_rows = pairs.rows[k]
        first = scored(lo, his, his_rows, here, buffers[0], buffers[2:4])
        # row k: first's complement
        mirror = scored(full - lo, full - his, mirror_rows, there, buffers[1], buffers[2:4])
        judge(here, first, mirror, buffers[2], buffers[4])
        judge(there, mirror, first, buffers[2], buffers[4])

    # A callable metric runs the caller's Python code: in one thread, as it may not be safe
    # in two (and would hold the GIL anyway).
    workers = _workers(n_splits * n) if fn is None else 1
    kept = _work_buffers(most, workers)
    if workers == 1:
        with np.errstate(divide="ignore", invalid="ignore"):  # undefined scores: NaN, refused above
            for k, a in tasks:
                run(k, a, kept[0])
    else:
        _run_threaded(tasks, run, kept[:workers])
    is_perf = metric_of.value(is_score)
    oos_perf = metric_of.value(oos_score)
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
