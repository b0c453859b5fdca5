"""Effective number of independent trials (perfledger.stats.trials) against independent
computations (numpy's eigenvalues, closed forms for equicorrelated and clustered sweeps),
its ends (identical → 1, independent → N), and the DSR helper that takes it."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfledger import ValidationError
from perfledger.returns import deflated_sharpe_ratio, expected_max_sharpe, probabilistic_sharpe_ratio
from perfledger.stats import (
    deflated_sharpe_ratio_effective,
    effective_trials,
    effective_trials_from_correlation,
    expected_max_sharpe_effective,
)


def test_identical_trials_are_one() -> None:
    base = np.random.default_rng(1).normal(0.0005, 0.01, 2520)
    m = np.column_stack([base] * 200)
    assert effective_trials(m) == pytest.approx(1.0, abs=1e-9)
    # scaled and shifted copies are the same bet
    copies = np.column_stack([base, 2 * base + 0.001, 0.5 * base])
    assert effective_trials(copies) == pytest.approx(1.0, abs=1e-9)


def li_ji(r: np.ndarray) -> float:
    """Li & Ji (2005), written here from the paper: Σ f(|λ|), f(x) = I(x >= 1) + (x - floor x)."""
    lam = np.abs(np.linalg.eigvalsh(r))
    return float(sum((1.0 if x >= 1 else 0.0) + (x - math.floor(x)) for x in lam))


def test_independent_trials_are_about_n() -> None:
    """Sampling spreads independent series' eigenvalues around 1, but each below 2 counts its
    own size, so the count stays N without a small-sample adjustment."""
    for seed in range(3):
        m = np.random.default_rng(seed).normal(0, 0.01, (2520, 50))
        assert effective_trials(m) == pytest.approx(50, rel=1e-9)


def test_clusters_count_as_clusters() -> None:
    """Two uncorrelated families of 100 near-identical configurations: each family counts
    between 1 and 2 (its top eigenvalue's whole 1 plus its fraction), so 2 to 4, not ≈ 101 as
    the average-correlation proxy says."""
    rng = np.random.default_rng(2)
    fams = rng.normal(0, 0.01, (2520, 2))
    m = np.column_stack([fams[:, k] + rng.normal(0, 1e-4, 2520) for k in (0, 1) for _ in range(100)])
    assert 2.0 <= effective_trials(m) <= 4.0
    rho = np.corrcoef(m, rowvar=False)[np.triu_indices(200, 1)].mean()
    assert rho + (1 - rho) * 200 > 100  # what the alternative gives


def test_families_of_different_sizes_count_as_families() -> None:
    """The review's sweep: one family of 190 configurations beside 10 independent strategies
    is about 11 independent bets (the participation ratio N²/Σρ² said 1.11)."""
    rng = np.random.default_rng(13)
    t = 2520
    m = np.c_[rng.normal(0, 0.01, (t, 1)) + rng.normal(0, 0.0005, (t, 190)), rng.normal(0, 0.01, (t, 10))]
    n_eff = effective_trials(m)
    assert 11.0 <= n_eff <= 12.5
    assert n_eff == pytest.approx(li_ji(np.corrcoef(m, rowvar=False)), rel=1e-9)
    r = np.corrcoef(m, rowvar=False)
    assert 200**2 / (r**2).sum() < 1.2  # the participation ratio this replaces


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 40), rho=st.floats(-0.02, 1.0))
def test_equicorrelated_against_the_eigenvalues(n: int, rho: float) -> None:
    r = np.full((n, n), rho)
    np.fill_diagonal(r, 1.0)
    if np.linalg.eigvalsh(r).min() < -1e-9:  # not a correlation matrix
        return
    # Closed form: eigenvalues 1 + (n - 1)·rho once and 1 - rho (n - 1 times).
    lam = [1 + (n - 1) * rho] + [1 - rho] * (n - 1)
    expected = sum((1.0 if x >= 1 - 1e-9 else 0.0) + (x - math.floor(x + 1e-9)) for x in map(abs, lam))
    assert effective_trials_from_correlation(r) == pytest.approx(min(max(expected, 1), n), abs=1e-6)


def test_matches_an_independent_computation_on_data() -> None:
    rng = np.random.default_rng(4)
    common = rng.normal(0, 0.01, (300, 1))
    m = common * rng.uniform(0.2, 1.0, 12) + rng.normal(0, 0.01, (300, 12))
    expected = min(max(li_ji(np.corrcoef(m, rowvar=False)), 1), 12)
    assert effective_trials(pd.DataFrame(m)) == pytest.approx(expected, rel=1e-10)


def test_dsr_with_integer_n_is_the_dsr() -> None:
    for n in (2, 3, 10, 100, 1000):
        assert expected_max_sharpe_effective(n, 0.0025) == pytest.approx(
            expected_max_sharpe(n, 0.0025), rel=1e-14)
        assert deflated_sharpe_ratio_effective(0.1, 253, n, 0.0025) == pytest.approx(
            deflated_sharpe_ratio(0.1, 253, n, 0.0025), rel=1e-14)


def test_dsr_between_integers_and_near_one() -> None:
    sr0 = [expected_max_sharpe_effective(n, 0.0025) for n in np.linspace(1, 50, 400)]
    assert all(b >= a for a, b in itertools.pairwise(sr0))  # more trials, more deflation
    assert expected_max_sharpe_effective(1.1, 0.0025) == 0.0  # the formula's negative value, floored
    psr = probabilistic_sharpe_ratio(0.1, 253)
    assert deflated_sharpe_ratio_effective(0.1, 253, 1.1, 0.0025) == psr
    assert deflated_sharpe_ratio_effective(0.1, 253, 7.5, 0.0025) < psr


@pytest.mark.parametrize("value", [0.5, 0, math.nan, math.inf, True, "3"])
def test_bad_n_effective(value) -> None:
    with pytest.raises(ValidationError) as info:
        deflated_sharpe_ratio_effective(0.1, 253, value, 0.0025)
    assert info.value.problems[0][1] == "n_effective"


@pytest.mark.parametrize("returns", [np.zeros(10), np.zeros((2, 3)), [[1.0, math.nan]] * 5, "x", None])
def test_bad_returns(returns) -> None:
    with pytest.raises(ValidationError) as info:
        effective_trials(returns)
    assert info.value.problems[0][1] == "returns"


def test_constant_trial_is_refused() -> None:
    m = np.random.default_rng(5).normal(0, 0.01, (50, 3))
    m[:, 2] = 0.003
    with pytest.raises(ValidationError, match=r"returns\[:, 2\] is constant"):
        effective_trials(m)


@pytest.mark.parametrize("corr,argument", [
    (np.ones((2, 3)), "correlation"), ([[1, 2], [2, 1]], "correlation"),
    ([[1, 0.5], [0.4, 1]], "correlation"),
    ([[0.9, 0], [0, 1]], "correlation"), ([[1, math.nan], [math.nan, 1]], "correlation"),
])
def test_bad_correlation(corr, argument) -> None:
    with pytest.raises(ValidationError) as info:
        effective_trials_from_correlation(corr)
    assert info.value.problems[0][1] == argument
    with pytest.raises(ValidationError) as info:
        effective_trials_from_correlation(np.eye(3), n_periods=2)
    assert info.value.problems[0][1] == "n_periods"


def test_ledger_dsr_deflates_a_big_family_beside_independent_strategies(tmp_path) -> None:
    """The review's sweep in a ledger: the DSR deflates by ≈ 11–12 trials, below the PSR
    (with the participation ratio N_eff was 1.11 and DSR == PSR); n_trials below the logged
    count is refused, saying why."""
    from perfledger import Ledger

    rng = np.random.default_rng(13)
    t = 2520
    idx = pd.bdate_range("2015-01-01", periods=t)
    m = np.c_[rng.normal(0, 0.01, (t, 1)) + rng.normal(0, 0.0005, (t, 190)), rng.normal(0, 0.01, (t, 10))]
    with Ledger(tmp_path / "l") as led:
        for j in range(200):
            led.log_backtest("Fam" if j < 190 else f"Ind{j}", "Z", pd.Series(m[:, j], index=idx))
        conf = led.sharpe_confidence("Z").sort_values("sharpe", ascending=False)
        top = conf.iloc[0]
        assert 11.0 <= top["n_effective"] <= 12.5
        assert top["dsr"] < top["psr"] - 0.05
        with pytest.raises(ValidationError, match="not logged"):
            led.sharpe_confidence("Z", n_trials=11)
