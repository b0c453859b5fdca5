"""Ledger.overfitting (PBO by CSCV over the kept return series, aligned on common dates),
MinTRL and the effective number of trials in sharpe_confidence: each checked against an
independent computation written here (not the module's functions)."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from perfledger import Ledger, ValidationError

IDX = pd.bdate_range("2016-01-01", periods=400, tz="UTC")


def _naive_pbo(x: np.ndarray, s: int) -> tuple[float, list[float]]:
    """CSCV written out: every half of S blocks, Sharpe per trial on each half, the in-sample
    winner's out-of-sample average rank, its logit; PBO the share of logits <= 0."""
    t, n = x.shape
    x = x[t % s:]
    blocks = np.array_split(np.arange(x.shape[0]), s)
    logits = []
    for ins in combinations(range(s), s // 2):
        outs = [b for b in range(s) if b not in ins]
        a = x[np.concatenate([blocks[b] for b in ins])]
        b = x[np.concatenate([blocks[b] for b in outs])]
        sa = a.mean(0) / a.std(0, ddof=1)
        sb = b.mean(0) / b.std(0, ddof=1)
        w = int(np.argmax(sa))
        rank = (sb < sb[w]).sum() + ((sb == sb[w]).sum() + 1) / 2
        logits.append(math.log(rank / (n + 1 - rank)))
    return float(np.mean(np.array(logits) <= 0)), logits


def _sweep(led: Ledger, n: int, seed: int, *, skilled: bool = False, tag: str = "s1") -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.01, (len(IDX), n))
    if skilled:
        x[:, 0] += 0.004
    for j in range(n):
        led.log_backtest(f"Cfg{j}", "AAPL", pd.Series(x[:, j], index=IDX), tags={"run": tag})
    return x


def test_pbo_agrees_with_an_independent_cscv_on_common_dates(any_ledger: Ledger) -> None:
    x = _sweep(any_ledger, 6, 1)
    short = pd.Series(np.random.default_rng(9).normal(0, 0.01, 300), index=IDX[50:350])
    any_ledger.log_backtest("Short", "AAPL", short, tags={"run": "s1"})
    got = any_ledger.overfitting("AAPL", partitions=8)
    common = np.column_stack([x[50:350], short.to_numpy()])
    want, logits = _naive_pbo(common, 8)
    assert got.n_periods == 296 and got.n_dropped == 4 and got.n_trials == 7
    assert got.pbo == want
    np.testing.assert_allclose(got.logits, logits, rtol=0, atol=1e-12)
    assert got.trials[-1].startswith("Short#")


def test_one_skilled_trial_among_noise_is_not_overfit(ledger: Ledger) -> None:
    _sweep(ledger, 8, 2, skilled=True)
    assert ledger.overfitting("AAPL", partitions=8).pbo == 0.0


def test_the_filters_apply(ledger: Ledger) -> None:
    _sweep(ledger, 4, 3, tag="a")
    _sweep(ledger, 6, 4, tag="b")
    assert ledger.overfitting("AAPL", tags={"run": "a"}, partitions=4).n_trials == 4
    assert ledger.overfitting("AAPL", tags={"run": "b"}, partitions=4).n_trials == 6
    assert ledger.overfitting("AAPL", model_name=["Cfg0", "Cfg1"], partitions=4).n_trials == 4


def test_metric_and_time_filters_apply_as_in_history(any_ledger: Ledger) -> None:
    _sweep(any_ledger, 8, 5)
    hist = any_ledger.history(ticker="AAPL", include_meta=True)
    cut = float(hist["sharpe"].median())
    chosen = hist[hist["sharpe"] >= cut]
    frame = any_ledger.returns_frame("AAPL", at_least={"sharpe": cut})
    assert list(frame.columns) == chosen["record_id"].astype(int).tolist()
    assert any_ledger.overfitting("AAPL", at_least={"sharpe": cut}, partitions=4).n_trials == len(chosen)
    later = hist["timestamp"].iloc[3]
    assert list(any_ledger.returns_frame("AAPL", since=later).columns) == \
        hist[hist["timestamp"] >= later]["record_id"].astype(int).tolist()


def test_the_series_are_read_without_the_history_columns(any_ledger: Ledger) -> None:
    """overfitting() and returns_frame() read ids, models and series only: not history()'s
    metrics, notes, params, tags and custom metrics, which they would drop."""
    x = _sweep(any_ledger, 5, 6)
    store = any_ledger._ensure()

    def no_history(*args: object, **kwargs: object) -> None:
        raise AssertionError("the series were read through history()")

    store.history = no_history  # type: ignore[method-assign]
    try:
        frame = any_ledger.returns_frame("AAPL", tags={"run": "s1"})
        np.testing.assert_array_equal(frame.to_numpy(), x)
        models = [f"Cfg{j}" for j in range(5)]
        assert frame.attrs["model_name"] == dict(zip(frame.columns, models, strict=True))
        assert any_ledger.overfitting("AAPL", partitions=4).n_trials == 5
    finally:
        del store.history


def test_the_per_ticker_statistics_refuse_a_missing_ticker_by_name(ledger: Ledger) -> None:
    """history(None) is every ticker; overfitting(None) was a raw TypeError. These statistics
    compare one sweep on one ticker, so None (or a non-str) is a ValidationError naming
    ``ticker`` (still a TypeError), the same for each of them."""
    _sweep(ledger, 3, 4)
    calls = (ledger.overfitting, ledger.effective_trials, ledger.sharpe_confidence, ledger.unscored_trials)
    for call in calls:
        for bad in (None, 5, ["AAPL"]):
            with pytest.raises(ValidationError, match=r"ticker must be a str, got") as info:
                call(bad)  # type: ignore[arg-type]
            assert isinstance(info.value, TypeError)
            assert [p[1] for p in info.value.problems] == ["ticker"]
            assert ("one ticker" in str(info.value)) == (bad is None)


def test_too_few_trials_or_periods_say_how_many_are_needed(ledger: Ledger) -> None:
    with pytest.raises(ValidationError, match="at least 2 evaluations") as info:
        ledger.overfitting("AAPL")
    assert "\n" not in str(info.value)
    ledger.log_backtest("A", "AAPL", [0.01, -0.02, 0.03, 0.0, 0.01])
    ledger.log_backtest("B", "AAPL", [0.02, -0.01, 0.01, 0.01, -0.03])
    with pytest.raises(ValidationError, match="needs at least 16") as info:
        ledger.overfitting("AAPL")
    assert "\n" not in str(info.value)


def test_min_trl_matches_an_independent_scipy_computation(ledger: Ledger) -> None:
    r = pd.Series(np.random.default_rng(5).normal(0.001, 0.01, 400), index=IDX)
    ledger.log_backtest("M", "AAPL", r)
    row = ledger.sharpe_confidence("AAPL").iloc[0]
    x = r.to_numpy()
    sr = x.mean() / x.std(ddof=1)
    m = x - x.mean()
    skew = (m ** 3).mean() / (m ** 2).mean() ** 1.5
    kurt = (m ** 4).mean() / (m ** 2).mean() ** 2
    want = 1 + (1 - skew * sr + (kurt - 1) / 4 * sr ** 2) * (norm.ppf(0.95) / sr) ** 2
    assert row["min_trl_periods"] == pytest.approx(want, rel=1e-9)
    assert row["min_trl_years"] == pytest.approx(want / 252, rel=1e-9)


def test_identical_trials_count_as_one_and_n_trials_still_overrides(ledger: Ledger) -> None:
    rng = np.random.default_rng(6)
    r = pd.Series(rng.normal(0.0005, 0.01, 300), index=IDX[:300])
    for j in range(5):  # the same strategy, up to a rounding-sized difference (ρ ≈ 0.99999)
        ledger.log_backtest(f"Same{j}", "AAPL", r + rng.normal(0, 3e-5, 300))
    conf = ledger.sharpe_confidence("AAPL")
    assert conf["n_trials"].iat[0] == 5
    # Li & Ji: the top eigenvalue (≈ 4.9999) counts 1 plus its fraction, so a family of
    # near-identical trials counts between 1 and 2 (docs/metrics.md: the estimator's cost)
    assert 1.0 <= conf["n_effective"].iat[0] <= 2.0 + 1e-9
    assert conf["dsr"].iat[0] <= conf["psr"].iat[0]
    forced = ledger.sharpe_confidence("AAPL", n_trials=5)
    assert math.isnan(forced["n_effective"].iat[0]) and forced["dsr"].iat[0] < conf["dsr"].iat[0]


def test_independent_trials_count_as_about_n(ledger: Ledger) -> None:
    _sweep(ledger, 8, 7)
    eff, k = ledger.effective_trials("AAPL")  # type: ignore[misc]
    assert k == 8 and 7.5 < eff <= 8.0
    assert ledger.sharpe_confidence("AAPL")["n_effective"].iat[0] == pytest.approx(eff)


def test_without_kept_returns_the_dsr_is_as_before(ledger: Ledger) -> None:
    for j in range(3):
        ledger.log_backtest(f"M{j}", "AAPL", np.random.default_rng(j).normal(0, 0.01, 100),
                            keep_returns=False)
    conf = ledger.sharpe_confidence("AAPL")
    assert conf["n_effective"].isna().all() and (conf["n_trials"] == 3).all()
