"""Minimum track record length (perfledger.stats.track_record) against independent
computations: scipy's normal quantile in the paper's formula, scipy's root finder on a PSR
written with scipy, scipy's moment estimators for a return series, and a hand-worked
example; the undefined cases are answers, and bad input names the argument."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from perfledger import ValidationError
from perfledger.returns import probabilistic_sharpe_ratio
from perfledger.stats import min_track_record_length, track_record_of


def scipy_psr(sr: float, t: float, skew: float, kurt: float, bench: float) -> float:
    return stats.norm.cdf((sr - bench) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2))


def test_hand_worked_example() -> None:
    """SR = 0.1 a day, normal returns, 95 %: 1 + (1 + 0.01/2)·(1.644854/0.1)² = 272.907
    days = 1.083 years (a 253-day record has PSR 0.9433, docs/metrics.md: not enough)."""
    res = min_track_record_length(0.1)
    assert res.periods == pytest.approx(1 + 1.005 * (1.6448536269514722 / 0.1) ** 2, rel=1e-12)
    assert res.periods == pytest.approx(272.907, abs=5e-4)
    assert res.years == pytest.approx(272.907 / 252, abs=5e-6)
    assert res.reason == "" and res.enough is None


@settings(max_examples=60, deadline=None)
@given(
    sr=st.floats(0.01, 0.5), bench=st.floats(-0.2, 0.3), skew=st.floats(-2, 2),
    excess=st.floats(0, 8), conf=st.floats(0.55, 0.999), ppy=st.sampled_from([252, 52, 12]),
)
def test_matches_scipy_formula_and_root_of_psr(sr, bench, skew, excess, conf, ppy) -> None:
    kurt = 3 + excess
    var = 1 - skew * sr + (kurt - 1) / 4 * sr**2
    if sr <= bench + 1e-3 or var <= 0.05:
        return
    res = min_track_record_length(sr, skew, kurt, bench, conf, ppy)
    expected = 1 + var * (stats.norm.ppf(conf) / (sr - bench)) ** 2
    assert res.periods == pytest.approx(expected, rel=1e-9)
    assert res.years == pytest.approx(expected / ppy, rel=1e-9)
    # the length at which a PSR written with scipy reaches the confidence
    root = optimize.brentq(lambda t: scipy_psr(sr, t, skew, kurt, bench) - conf, 1 + 1e-12, 1e12,
                           xtol=1e-12, rtol=1e-13)
    assert res.periods == pytest.approx(root, rel=1e-8)
    # and the library's own PSR agrees: same kurtosis convention (non-excess); it is
    # defined from 2 periods on
    if res.periods >= 2:
        psr = probabilistic_sharpe_ratio(sr, res.periods, skew, kurt, bench)
        assert psr == pytest.approx(conf, abs=1e-9)


def test_series_uses_the_stored_moment_conventions() -> None:
    rng = np.random.default_rng(3)
    r = rng.standard_t(5, 1500) * 0.01 + 0.0012
    res = track_record_of(r, periods_per_year=252)
    sr = r.mean() / r.std(ddof=1)
    g3 = stats.skew(r, bias=True)
    g4 = stats.kurtosis(r, fisher=False, bias=True)  # non-excess
    expected = 1 + (1 - g3 * sr + (g4 - 1) / 4 * sr**2) * (stats.norm.ppf(0.95) / sr) ** 2
    assert res.periods == pytest.approx(expected, rel=1e-10)
    assert res.skew == pytest.approx(g3, rel=1e-10) and res.kurtosis == pytest.approx(g4, rel=1e-10)
    assert res.n_periods == 1500 and res.enough is bool(expected <= 1500)


def test_sharpe_at_or_below_benchmark_needs_an_infinite_record() -> None:
    for sr, bench in [(0.0, 0.0), (-0.05, 0.0), (0.1, 0.2)]:
        res = min_track_record_length(sr, sr_benchmark=bench)
        assert res.periods == math.inf and res.years == math.inf
        assert "does not exceed the benchmark" in res.reason
    losing = track_record_of(np.random.default_rng(4).normal(-0.003, 0.01, 300))
    assert losing.sr < 0
    assert losing.periods == math.inf and losing.enough is False


def test_impossible_moments_give_nan_with_a_reason() -> None:
    res = min_track_record_length(1.0, skew=3.0, kurtosis=0.0)
    assert math.isnan(res.periods) and "non-excess" in res.reason


def test_constant_returns_have_no_track_record() -> None:
    res = track_record_of([0.001] * 50)
    assert math.isnan(res.periods) and res.reason == "constant returns have no Sharpe ratio"


@pytest.mark.parametrize("kwargs,argument", [
    ({"sr": math.nan}, "sr"), ({"sr": "0.1"}, "sr"), ({"sr": 0.1, "skew": math.inf}, "skew"),
    ({"sr": 0.1, "kurtosis": None}, "kurtosis"), ({"sr": 0.1, "sr_benchmark": math.nan}, "sr_benchmark"),
    ({"sr": 0.1, "confidence": 1.0}, "confidence"), ({"sr": 0.1, "confidence": 0}, "confidence"),
    ({"sr": 0.1, "confidence": 95}, "confidence"), ({"sr": 0.1, "periods_per_year": 0}, "periods_per_year"),
])
def test_bad_input_names_the_argument(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValidationError) as info:
        min_track_record_length(**kwargs)
    assert info.value.problems[0][1] == argument
    assert argument in str(info.value)


def test_bad_series_names_returns() -> None:
    with pytest.raises(ValidationError) as info:
        track_record_of([0.01, math.nan, 0.02])
    assert info.value.problems[0][1] == "returns"


def test_a_sharpe_a_hair_above_the_benchmark_needs_an_infinite_record_not_an_overflow() -> None:
    """Review #13: OverflowError for 1e-200; now inf periods, with the reason."""
    from perfledger.stats import min_track_record_length

    for kwargs in ({"sr": 1e-200}, {"sr": 2e-160}, {"sr": 1e-160, "sr_benchmark": -1e-160}):
        trl = min_track_record_length(**kwargs)
        assert trl.periods == math.inf and trl.years == math.inf and "beyond" in trl.reason
