"""PBO by CSCV (perfledger.stats.overfitting) against a deliberately naive implementation
written here: loops over itertools.combinations, the metric recomputed from the raw returns
of every half, its own ranking and its own regression. Then the statistic's behaviour on
sweeps whose answer is known (noise: ≈ 0.5; one skilled trial: ≈ 0) and bad input."""

from __future__ import annotations

import math
import warnings
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfledger import ValidationError
from perfledger.stats import overfitting, probability_of_backtest_overfitting
from perfledger.stats.overfitting import cscv_splits


def naive_sharpe(rows: np.ndarray) -> list[float]:
    out = []
    for j in range(rows.shape[1]):
        col = rows[:, j]
        mean = sum(col) / len(col)
        var = sum((v - mean) ** 2 for v in col) / (len(col) - 1)
        out.append(mean / math.sqrt(var) * math.sqrt(252))
    return out


def naive_cscv(m: np.ndarray, s: int, metric=naive_sharpe) -> dict:
    """The paper's steps, literally: drop the oldest T mod S rows, S blocks, every choice of
    S/2 blocks in-sample, the metric from the raw rows of each half, the first best
    in-sample trial, its average out-of-sample rank, the logit, the OLS line."""
    m = m[m.shape[0] % s:]
    size = m.shape[0] // s
    blocks = [m[i * size:(i + 1) * size] for i in range(s)]
    n = m.shape[1]
    logits, ins, outs, winners = [], [], [], []
    for chosen in combinations(range(s), s // 2):
        rest = [b for b in range(s) if b not in chosen]
        r_in = metric(np.concatenate([blocks[b] for b in chosen]))
        r_out = metric(np.concatenate([blocks[b] for b in rest]))
        best = 0
        for j in range(1, n):
            if r_in[j] > r_in[best]:
                best = j
        value = r_out[best]
        less = sum(1 for v in r_out if v < value)
        equal = sum(1 for v in r_out if v == value)  # the winner itself included
        rank = less + (equal + 1) / 2  # average rank of the tie group, 1 = worst
        omega = rank / (n + 1)
        logits.append(math.log(omega / (1 - omega)))
        ins.append(r_in[best])
        outs.append(value)
        winners.append(best)
    slope, intercept = np.polyfit(ins, outs, 1)
    r2 = np.corrcoef(ins, outs)[0, 1] ** 2
    return {
        "pbo": sum(1 for v in logits if v <= 0) / len(logits),
        "logits": np.array(logits), "is": np.array(ins), "oos": np.array(outs),
        "winners": np.array(winners), "slope": slope, "intercept": intercept, "r2": r2,
        "loss": sum(1 for v in outs if v < 0) / len(outs),
    }


def assert_same(res, ref: dict, tol: float = 1e-12) -> None:
    """Ranks, winners and PBO exactly; performances and the degradation line to ``tol``."""
    assert res.pbo == ref["pbo"]
    assert res.prob_oos_loss == ref["loss"]
    np.testing.assert_array_equal(res.winners, ref["winners"])
    np.testing.assert_allclose(res.logits, ref["logits"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.is_performance, ref["is"], rtol=tol, atol=tol)
    np.testing.assert_allclose(res.oos_performance, ref["oos"], rtol=tol, atol=tol)
    assert res.slope == pytest.approx(ref["slope"], rel=tol, abs=tol)
    assert res.intercept == pytest.approx(ref["intercept"], rel=tol, abs=tol)
    assert res.r_squared == pytest.approx(ref["r2"], rel=tol, abs=tol)


@pytest.mark.parametrize("seed,t,n,s", [(1, 203, 7, 8), (2, 130, 12, 10), (3, 64, 5, 4), (4, 9, 3, 2)])
def test_matches_naive_cscv(seed: int, t: int, n: int, s: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0004, 0.01, (t, n)) + rng.normal(0, 0.0005, n)  # trials differ a little
    res = probability_of_backtest_overfitting(m, partitions=s)
    ref = naive_cscv(m, s)
    assert_same(res, ref)
    assert res.n_splits == math.comb(s, s // 2)
    assert res.n_dropped == t % s and res.n_periods == t - t % s and res.block_size == t // s


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), s=st.sampled_from([2, 4, 6, 8]), n=st.integers(2, 9),
       extra=st.integers(0, 60), scale=st.sampled_from([1e-4, 0.01, 3.0]))
def test_matches_naive_cscv_on_random_shapes(seed: int, s: int, n: int, extra: int, scale: float) -> None:
    """Any shape, any scale (PnL in dollars as well as returns), T not a multiple of S."""
    t = max(s, 4) + extra
    rng = np.random.default_rng(seed)
    m = rng.normal(0.05 * scale, scale, (t, n)) + rng.normal(0, 0.1 * scale, n)
    # Two periods per half can give a Sharpe in the thousands (a mean far above a tiny spread):
    # block sums of squares and the naive two-pass variance then part at ~1e-12 relative, the
    # rounding of the cancellation itself, so values are compared to 1e-9 here (ranks exactly).
    assert_same(probability_of_backtest_overfitting(m, partitions=s), naive_cscv(m, s), tol=1e-9)


def test_matches_naive_cscv_with_sixteen_partitions() -> None:
    """The default S = 16: all 12,870 splits, checked one by one."""
    rng = np.random.default_rng(16)
    m = rng.normal(0.0003, 0.01, (170, 4)) + np.array([0.0, 0.0004, -0.0002, 0.0001])

    def fast_sharpe(rows: np.ndarray) -> np.ndarray:  # numpy, still from the raw rows
        return rows.mean(axis=0) / rows.std(axis=0, ddof=1) * math.sqrt(252)

    assert_same(probability_of_backtest_overfitting(m), naive_cscv(m, 16, fast_sharpe))


@pytest.mark.parametrize("metric", ["mean", "sortino", "total_return"])
def test_other_metrics_match_naive(metric: str) -> None:
    def naive(rows: np.ndarray) -> list[float]:
        out = []
        for j in range(rows.shape[1]):
            col = rows[:, j]
            if metric == "mean":
                out.append(sum(col) / len(col))
            elif metric == "sortino":
                down = math.sqrt(sum(min(v, 0.0) ** 2 for v in col) / len(col))
                out.append(sum(col) / len(col) / down * math.sqrt(252))
            else:
                out.append(math.prod(1 + v for v in col) - 1)
        return out

    m = np.random.default_rng(7).normal(0.0005, 0.01, (97, 6))
    assert_same(probability_of_backtest_overfitting(m, partitions=8, metric=metric), naive_cscv(m, 8, naive))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), s=st.sampled_from([2, 4, 6, 8, 10, 12]), n=st.integers(2, 40),
       extra=st.integers(0, 40), copies=st.integers(0, 3), chunk=st.sampled_from([1, 7, 64, 1 << 16]),
       drift=st.sampled_from([0.0004, 0.03]), workers=st.sampled_from([1, 2]))
def test_fast_path_matches_a_straightforward_cscv(
    seed: int, s: int, n: int, extra: int, copies: int, chunk: int, drift: float, workers: int
) -> None:
    """The fast path (pair groups of subset tables, scores ranked by the Sharpe's signed
    square, chunked) against CSCV written straight from the raw rows, on random data: every
    S from 2 (one block a side) to 12, odd and even halves, T not a multiple of S, trials
    that are exact copies of others (ties in and out of sample), and chunks from one row of
    half-sets to all of them, means small against the spread (raw sums) and three times it
    (sums about the mean), scored by one thread or two. Winners, ranks, logits and PBO
    exactly."""
    rng = np.random.default_rng(seed)
    t = max(s, 4) + extra
    m = rng.normal(drift, 0.01, (t, n)) + rng.normal(0, 0.0006, n)
    for _ in range(copies):  # a configuration that changed nothing: identical returns
        m[:, rng.integers(n)] = m[:, rng.integers(n)]

    def sharpe(rows: np.ndarray) -> np.ndarray:
        return rows.mean(axis=0) / rows.std(axis=0, ddof=1) * math.sqrt(252)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(overfitting, "_CHUNK_VALUES", chunk)
        patch.setattr(overfitting, "_workers", lambda values: workers)
        if (m == m[:, :1]).all():  # every trial a copy of one: no selection, PBO undefined
            with pytest.raises(ValidationError, match="indistinguishable"):
                probability_of_backtest_overfitting(m, partitions=s)
            return
        res = probability_of_backtest_overfitting(m, partitions=s)
    assert_same(res, naive_cscv(m, s, sharpe), tol=1e-9)


def _scored_by(workers: int, m: np.ndarray, s: int, metric: str, chunk: int) -> object:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(overfitting, "_CHUNK_VALUES", chunk)
        patch.setattr(overfitting, "_workers", lambda values: workers)
        try:
            return probability_of_backtest_overfitting(m, partitions=s, metric=metric)
        except ValidationError as exc:
            return str(exc)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), s=st.sampled_from([8, 12, 16]), n=st.integers(2, 60),
       ties=st.lists(st.sampled_from(["copy", "double", "ulp", "flat"]), max_size=4),
       metric=st.sampled_from(sorted(overfitting.METRICS)), chunk=st.sampled_from([1, 64, 1 << 16]))
def test_two_threads_give_one_threads_result_bit_for_bit(
    seed: int, s: int, n: int, ties: list[str], metric: str, chunk: int
) -> None:
    """The half-sets scored by two threads (each taking the next chunk) against one thread,
    on sweeps made adversarial: exact copies and doubles of a trial (tied scores in and out
    of sample), a trial one ulp away from another on one period (near ties), a trial flat on
    a half (refused: the same error, the earliest split's, whichever thread met it first).
    Every array equal, bit for bit, or the same error message."""
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0004, 0.01, (s * 9 + 3, n))
    for kind in ties:
        j, k = (int(v) for v in rng.integers(n, size=2))
        if kind == "copy":
            m[:, j] = m[:, k]
        elif kind == "double":
            m[:, j] = 2.0 * m[:, k]
        elif kind == "ulp":
            m[:, j] = m[:, k]
            i = int(rng.integers(m.shape[0]))
            m[i, j] = np.nextafter(m[i, j], np.inf)
        else:
            m[3: 3 + 9 * (s // 2), j] = 0.0  # the first S/2 blocks (3 oldest rows dropped)
    one, two = _scored_by(1, m, s, metric, chunk), _scored_by(2, m, s, metric, chunk)
    if isinstance(one, str):
        assert two == one
        return
    assert not isinstance(two, str), two
    for field in ("logits", "winners", "oos_rank", "is_performance", "oos_performance"):
        np.testing.assert_array_equal(getattr(two, field), getattr(one, field), strict=True)
    for field in ("pbo", "prob_oos_loss", "slope", "intercept", "r_squared"):
        assert np.array_equal(getattr(two, field), getattr(one, field), equal_nan=True), field


def test_two_threads_are_used_for_a_large_sweep_and_agree_with_one() -> None:
    """200 trials × 2,520 periods, S = 16: 2.6 million scores, past the threshold, scored
    by two threads when two CPUs are there; the same result as one thread."""
    m = np.random.default_rng(22).normal(0.0002, 0.01, (2520, 200))
    assert overfitting._workers(12870 * 200) == min(2, len(__import__("os").sched_getaffinity(0)))
    assert overfitting._workers(12870 * 20) == 1
    one, two = _scored_by(1, m, 16, "sharpe", 1 << 16), _scored_by(2, m, 16, "sharpe", 1 << 16)
    assert one.pbo == two.pbo
    np.testing.assert_array_equal(one.winners, two.winners)
    np.testing.assert_array_equal(one.oos_rank, two.oos_rank)
    np.testing.assert_array_equal(one.is_performance, two.is_performance)


@pytest.mark.parametrize("layout", ["C", "F", "frame"])
def test_the_callers_returns_are_left_as_they_were(layout: str) -> None:
    """The Sharpe's deviations are computed in place, in the function's own copy."""
    m = np.random.default_rng(12).normal(0.0004, 0.01, (130, 6))
    given = {"C": np.ascontiguousarray(m), "F": np.asfortranarray(m), "frame": pd.DataFrame(m)}[layout]
    before = np.array(given, copy=True)
    first = probability_of_backtest_overfitting(given, partitions=8)
    np.testing.assert_array_equal(np.asarray(given), before)
    again = probability_of_backtest_overfitting(given, partitions=8)  # the kept buffers reused
    np.testing.assert_array_equal(first.logits, again.logits)
    assert_same(first, naive_cscv(m, 8))


def test_callable_metric_is_called_on_raw_halves() -> None:
    m = np.random.default_rng(8).normal(0.0005, 0.01, (80, 5))

    def median(rows: np.ndarray) -> np.ndarray:
        return np.median(rows, axis=0)

    res = probability_of_backtest_overfitting(m, partitions=6, metric=median)
    assert res.metric == "median"
    assert_same(res, naive_cscv(m, 6, lambda rows: list(np.median(rows, axis=0))))


def test_ties_share_their_average_rank() -> None:
    """Trials 1 and 2 are identical: out of sample they tie, and a winner among them gets
    the average of the two ranks (as scipy.stats.rankdata(method='average'))."""
    rng = np.random.default_rng(9)
    base = rng.normal(0.0005, 0.01, (64, 4))
    base[:, 2] = base[:, 1]
    base[:, 1] += 0.002  # trial 1 wins everywhere... and ties nobody; make 3 a copy of it
    base[:, 3] = base[:, 1]
    res = probability_of_backtest_overfitting(base, partitions=4)
    assert set(res.winners.tolist()) == {1}  # the first of the tied best
    assert set(res.oos_rank.tolist()) == {3.5}  # tied 3rd and 4th of 4
    assert_same(res, naive_cscv(base, 4))


def test_complement_of_half_set_h_is_c_minus_1_minus_h() -> None:
    """The module pairs half-set h with half-set C − 1 − h: true of combinations order."""
    for s in (2, 4, 8, 16):
        splits = cscv_splits(s)
        for h, chosen in enumerate(splits):
            other = splits[len(splits) - 1 - h]
            assert sorted(set(chosen) | set(other)) == list(range(s))


def test_pure_noise_has_pbo_about_one_half() -> None:
    """N = 10 unskilled trials: the in-sample winner's out-of-sample rank is uniform, so
    PBO = P(rank ≤ N/2) = 0.5. One sweep's PBO is the mean of strongly dependent split
    indicators, so it varies a lot between sweeps; the mean over K = 120 independent sweeps
    has standard error sd/√K, measured here (≈ 0.02), and must lie within 4 of them."""
    k = 120
    values = []
    for seed in range(k):
        m = np.random.default_rng(1000 + seed).normal(0.0, 0.01, (400, 10))
        values.append(probability_of_backtest_overfitting(m, partitions=8).pbo)
    mean, se = float(np.mean(values)), float(np.std(values, ddof=1) / math.sqrt(k))
    assert se < 0.035  # the check below means something
    assert abs(mean - 0.5) < 4 * se, (mean, se)


def test_pure_noise_with_odd_trials_counts_the_median_as_overfit() -> None:
    """With N = 5 the median rank 3 has logit 0, counted as overfit (λ ≤ 0, the paper's
    ∫₋∞⁰): PBO ≈ P(rank ≤ 3) = 3/5."""
    k = 120
    values = [
        probability_of_backtest_overfitting(
            np.random.default_rng(5000 + seed).normal(0.0, 0.01, (400, 5)), partitions=8
        ).pbo
        for seed in range(k)
    ]
    mean, se = float(np.mean(values)), float(np.std(values, ddof=1) / math.sqrt(k))
    assert abs(mean - 0.6) < 4 * se, (mean, se)


def test_one_skilled_trial_among_noise_has_pbo_near_zero() -> None:
    rng = np.random.default_rng(11)
    m = rng.normal(0.0, 0.01, (1000, 30))
    m[:, 17] += 0.004  # annualised Sharpe ≈ 6.3: skill, not luck
    res = probability_of_backtest_overfitting(m)
    assert res.pbo == 0.0
    assert set(res.winners.tolist()) == {17}
    assert res.prob_oos_loss == 0.0
    assert (res.oos_rank == 30).all()


def test_dataframe_columns_name_the_trials() -> None:
    m = pd.DataFrame(np.random.default_rng(12).normal(0, 0.01, (40, 3)), columns=["a", "b", "c"],
                     index=pd.date_range("2024-01-01", periods=40))
    res = probability_of_backtest_overfitting(m, partitions=4)
    assert res.trials == ("a", "b", "c")
    assert not res.logits.flags.writeable


def test_constant_trial_is_refused_naming_returns() -> None:
    m = np.random.default_rng(13).normal(0, 0.01, (40, 3))
    m[:, 1] = 0.001
    with pytest.raises(ValidationError, match="sharpe of trial '1' is undefined") as info:
        probability_of_backtest_overfitting(m, partitions=4)
    assert info.value.problems[0][1] == "returns"


finite = st.floats(-0.5, 0.5, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(
    t=st.integers(16, 40), n=st.integers(2, 5), i=st.integers(0, 10_000), j=st.integers(0, 10_000),
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_non_finite_returns_are_refused(t: int, n: int, i: int, j: int, bad: float) -> None:
    m = np.random.default_rng(t * n).normal(0, 0.01, (t, n))
    m[i % t, j % n] = bad
    with pytest.raises(ValidationError, match=r"returns\[") as info:
        probability_of_backtest_overfitting(m, partitions=4)
    assert info.value.problems[0][1] == "returns"


def test_finite_returns_whose_sum_overflows_are_not_called_non_finite() -> None:
    """The finiteness check sums the matrix first (one pass): a sum that overflows on
    finite values (1e308 twice) is checked value by value, and passes that check."""
    m = np.random.default_rng(3).normal(0, 0.01, (64, 4))
    m[0, 0] = m[1, 0] = 1e308
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the huge values' own arithmetic
        res = probability_of_backtest_overfitting(m, partitions=4, metric="mean")
    assert res.n_splits == 6


@settings(max_examples=40, deadline=None)
@given(s=st.sampled_from([2, 4, 8, 16, 20]), t=st.integers(1, 19))
def test_too_few_periods_say_how_many_are_needed(s: int, t: int) -> None:
    needed = 4 if s == 2 else s
    m = np.random.default_rng(t).normal(0, 0.01, (t, 3))
    if t >= needed:
        probability_of_backtest_overfitting(m, partitions=s)
        return
    with pytest.raises(ValidationError, match=f"needs at least {needed}") as info:
        probability_of_backtest_overfitting(m, partitions=s)
    assert info.value.problems[0][1] == "returns"


@settings(max_examples=30, deadline=None)
@given(s=st.one_of(st.integers(-5, 40).filter(lambda v: v % 2 or v < 2 or v > 20),
                   st.sampled_from([4.0, True, "16", None])))
def test_bad_partitions_are_refused(s) -> None:
    m = np.random.default_rng(0).normal(0, 0.01, (64, 3))
    with pytest.raises(ValidationError, match="partitions=") as info:
        probability_of_backtest_overfitting(m, partitions=s)
    assert info.value.problems[0][1] == "partitions"


@pytest.mark.parametrize("returns", [
    np.zeros((40, 1)), np.zeros(40), np.zeros((2, 3, 4)), "abc", None, [[1, "x"], [2, 3]],
])
def test_bad_shapes_are_refused(returns) -> None:
    with pytest.raises(ValidationError) as info:
        probability_of_backtest_overfitting(returns, partitions=4)
    assert info.value.problems[0][1] == "returns"


def test_unknown_metric_is_refused() -> None:
    with pytest.raises(ValidationError, match="metric='calmar'") as info:
        probability_of_backtest_overfitting(np.zeros((40, 3)), partitions=4, metric="calmar")
    assert info.value.problems[0][1] == "metric"


def docs_sweep() -> pd.DataFrame:
    """docs/metrics.md's sweep: 4 families × 10 configurations, 2,520 days, no skill."""
    rng = np.random.default_rng(2024)
    family = rng.normal(0.0, 0.008, (2520, 4))
    cols = {f"fam{k}_cfg{c}": family[:, k] + rng.normal(0.0, 0.004, 2520)
            for k in range(4) for c in range(10)}
    return pd.DataFrame(cols, index=pd.bdate_range("2015-01-01", periods=2520))


def test_docs_sweep_example() -> None:
    """Every number of docs/metrics.md's worked sweep example."""
    from perfledger.returns import deflated_sharpe_ratio, from_returns
    from perfledger.stats import deflated_sharpe_ratio_effective, effective_trials, track_record_of

    df = docs_sweep()
    sharpes = df.mean() / df.std() * math.sqrt(252)
    best = sharpes.idxmax()
    assert best == "fam1_cfg6"
    assert round(sharpes.max(), 2) == 0.75 and round(sharpes.mean(), 2) == 0.14
    m = from_returns(df[best])
    assert round(m["psr"], 3) == 0.991
    trl = track_record_of(df[best])
    assert round(trl.periods) == 1221 and round(trl.years, 1) == 4.8 and trl.enough
    n_eff = effective_trials(df)
    assert round(n_eff, 2) == 13.0  # Li & Ji: each family of 10 correlated 0.8 counts about 3
    sr, var = m["sharpe"] / math.sqrt(252), float((sharpes / math.sqrt(252)).var(ddof=1))
    assert round(deflated_sharpe_ratio(sr, 2520, 40, var, m["skew"], m["kurtosis"]), 3) == 0.558
    assert round(deflated_sharpe_ratio_effective(sr, 2520, n_eff, var, m["skew"], m["kurtosis"]), 3) == 0.738
    assert round(deflated_sharpe_ratio(sr, 2520, 1, var, m["skew"], m["kurtosis"]), 3) == 0.991
    res = probability_of_backtest_overfitting(df)
    assert res.n_splits == 12870
    assert round(res.pbo, 3) == 0.438 and round(res.prob_oos_loss, 3) == 0.305
    assert round(res.slope, 2) == -0.53 and round(res.r_squared, 3) == 0.064
    assert round(res.is_performance.mean(), 2) == 0.89 and round(res.oos_performance.mean(), 2) == 0.24


def test_trial_flat_for_half_the_periods_is_refused_not_scored_on_rounding() -> None:
    """A trial that did not trade for the first half (zero returns) has no Sharpe on the
    half made of those blocks: refused, not a quotient of rounding errors."""
    m = np.random.default_rng(14).normal(0.0005, 0.01, (160, 3))
    m[:80, 2] = 0.0
    flat_half = r"trial '2' is undefined on the half made of blocks \[0, 1, 2, 3\]"
    with pytest.raises(ValidationError, match=flat_half):
        probability_of_backtest_overfitting(m, partitions=8)
    m[:80, 2] = 0.0007  # constant but not zero: the same
    with pytest.raises(ValidationError, match=r"trial '2' is undefined"):
        probability_of_backtest_overfitting(m, partitions=8)


def test_indistinguishable_trials_have_no_pbo_not_an_overfit_verdict(tmp_path) -> None:
    """Review #6: identical trials (a seed that does not matter) gave PBO 1.0, "Overfit"."""
    from perfledger import Ledger

    r = np.random.default_rng(0).normal(0, 0.01, 300)
    for m in (np.tile(r[:, None], (1, 6)), np.c_[r, 2 * r, 0.5 * r]):
        with pytest.raises(ValidationError, match="indistinguishable"):
            probability_of_backtest_overfitting(m)
    # the same first period (the check's shortcut) but not the same trial: a PBO
    other = np.random.default_rng(1).normal(0, 0.01, 300)
    other[0] = r[0]
    for metric in ("sharpe", "mean"):
        assert 0 <= probability_of_backtest_overfitting(np.c_[r, other], metric=metric).pbo <= 1
    assert 0 <= probability_of_backtest_overfitting(np.c_[r, r + 0.001], metric="mean").pbo <= 1
    with Ledger(tmp_path / "l") as led:
        for i in range(4):
            led.log_backtest("Same", "I", r, params={"i": i})
        with pytest.raises(ValidationError, match="indistinguishable"):
            led.overfitting("I")
