"""Backtest metrics, PSR/DSR and Ledger.log_backtest / sharpe_confidence.

Every expected value is computed here independently: plain Python loops over the returns,
or the papers' formulas written out by hand, never perfledger's own functions.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from perfledger import Ledger, ValidationError
from perfledger.stats.returns import (
    EULER_GAMMA,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    from_returns,
    norm_cdf,
    norm_ppf,
    probabilistic_sharpe_ratio,
)


def phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def sample_returns(seed: int = 11, n: int = 300) -> list[float]:
    """Seeded returns with a first-period loss and some flat (zero) periods."""
    rng = random.Random(seed)
    r = [rng.gauss(0.0008, 0.012) for _ in range(n)]
    r[0] = -0.03
    for i in (5, 6, 40, 41, 42, 200):
        r[i] = 0.0
    return r


def loop_metrics(r: list[float], ppy: float) -> dict[str, float]:
    """The documented conventions, written as straightforward loops."""
    n = len(r)
    mean = sum(r) / n
    var = sum((x - mean) ** 2 for x in r) / (n - 1)
    std = math.sqrt(var)
    wealth, peak, worst = 1.0, 1.0, 0.0
    for x in r:
        wealth *= 1 + x
        peak = max(peak, wealth)
        worst = min(worst, wealth / peak - 1)
    total = wealth - 1
    pos = sum(1 for x in r if x > 0)
    nonzero = sum(1 for x in r if x != 0)
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / n)
    annual = (1 + total) ** (ppy / n) - 1
    m2 = sum((x - mean) ** 2 for x in r) / n
    m3 = sum((x - mean) ** 3 for x in r) / n
    m4 = sum((x - mean) ** 4 for x in r) / n
    skew, kurt = m3 / m2**1.5, m4 / m2**2
    sr = mean / std
    psr = phi(sr * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr * sr))
    return {
        "sharpe": sr * math.sqrt(ppy),
        "volatility": std * math.sqrt(ppy),
        "total_return": total,
        "drawdown": worst,
        "win_rate": pos / nonzero,
        "sortino": mean / down * math.sqrt(ppy),
        "calmar": annual / abs(worst),
        "skew": skew,
        "kurtosis": kurt,
        "psr": psr,
        "n_periods": float(n),
    }


@pytest.mark.parametrize("ppy", [252, 52, 12])
def test_from_returns_matches_loops(ppy: int) -> None:
    r = sample_returns()
    got = from_returns(r, periods_per_year=ppy)
    want = loop_metrics(r, ppy)
    assert set(want) <= set(got)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
    assert "mse" not in got and "accuracy" not in got


def test_first_period_loss_is_a_drawdown() -> None:
    got = from_returns([-0.1, 0.05, 0.05])
    # Wealth 1.0 -> 0.9: a 10 % drawdown even though the path never rose first.
    assert got["drawdown"] == pytest.approx(-0.1)
    assert from_returns([0.01, 0.02])["drawdown"] == 0.0
    assert "calmar" not in from_returns([0.01, 0.02])  # no drawdown: calmar undefined, omitted


def test_win_rate_ignores_flat_periods() -> None:
    got = from_returns([0.01, 0.0, -0.01, 0.0, 0.02])
    assert got["win_rate"] == pytest.approx(2 / 3)
    assert "sortino" not in from_returns([0.01, 0.02, 0.0])  # no losing period


def test_mse_and_accuracy() -> None:
    p = [0.5, -0.2, 0.1, 0.0, -0.3]
    a = [0.4, 0.1, 0.3, 0.0, -0.1]
    got = from_returns([0.01, -0.01], predictions=p, actuals=a)
    mse = sum((x - y) ** 2 for x, y in zip(p, a, strict=True)) / len(p)
    hits = sum(1 for x, y in zip(p, a, strict=True) if (x > 0) - (x < 0) == (y > 0) - (y < 0))
    assert got["mse"] == pytest.approx(mse)
    assert got["accuracy"] == pytest.approx(hits / len(p))  # 4 of 5: only -0.2 vs 0.1 misses
    assert got["accuracy"] == pytest.approx(0.8)


def test_zero_std_leaves_sharpe_undefined() -> None:
    got = from_returns([0.001] * 50)
    for k in ("sharpe", "psr", "skew", "kurtosis"):
        assert k not in got
    assert got["volatility"] == 0.0
    assert got["total_return"] == pytest.approx(1.001**50 - 1)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"returns": [0.01, float("nan"), 0.02]}, "returns"),
        ({"returns": [0.01, float("inf")]}, "returns"),
        ({"returns": [0.01]}, "returns"),
        ({"returns": []}, "returns"),
        ({"returns": [0.01, -1.5]}, "returns"),
        ({"returns": "abc"}, "returns"),
        ({"returns": [0.01, 0.02], "predictions": [1.0, 2.0]}, "actuals"),
        ({"returns": [0.01, 0.02], "actuals": [1.0, 2.0]}, "predictions"),
        ({"returns": [0.01, 0.02], "predictions": [1.0, 2.0], "actuals": [1.0]}, "actuals"),
        ({"returns": [0.01, 0.02], "predictions": [1.0, float("nan")], "actuals": [1.0, 2.0]}, "predictions"),
        ({"returns": [0.01, 0.02], "periods_per_year": 0}, "periods_per_year"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValidationError) as info:
        from_returns(**kwargs)
    assert argument in str(info.value)
    assert info.value.problems[0][1] == argument


def test_normal_helpers_match_scipy() -> None:
    for z in (-3.0, -1.0, 0.0, 0.5, 1.96, 4.0):
        assert norm_cdf(z) == pytest.approx(scipy.stats.norm.cdf(z), abs=1e-12)
    for p in (0.01, 0.5, 0.9, 0.975):
        assert norm_ppf(p) == pytest.approx(scipy.stats.norm.ppf(p), abs=1e-9)


def test_psr_by_hand() -> None:
    # SR = 0.1 per period, T = 253, skew 0, kurtosis 3:
    # variance term 1 - 0*0.1 + (3-1)/4 * 0.01 = 1.005
    # z = 0.1 * sqrt(252) / sqrt(1.005) = 1.5874508 / 1.0024969 = 1.583497
    # PSR = Phi(1.583497) = 0.943346
    assert probabilistic_sharpe_ratio(0.1, 253, 0.0, 3.0) == pytest.approx(0.943346, abs=1e-6)
    # Negative skew and fat tails widen the error: skew -1, kurtosis 6:
    # 1 + 0.1 + 5/4 * 0.01 = 1.1125; z = 1.5874508 / sqrt(1.1125) = 1.505049
    assert probabilistic_sharpe_ratio(0.1, 253, -1.0, 6.0) == pytest.approx(
        scipy.stats.norm.cdf(1.5874508 / math.sqrt(1.1125)), abs=1e-6
    )
    assert math.isnan(probabilistic_sharpe_ratio(0.1, 1))


def test_dsr_by_hand() -> None:
    # N = 10 trials whose per-period Sharpes have variance 0.0025 (std 0.05):
    # Phi^-1(1 - 1/10) = 1.2815516 ; Phi^-1(1 - 1/(10e)) = Phi^-1(0.9632121) = 1.7892418
    # SR0 = 0.05 * (0.4227843 * 1.2815516 + 0.5772157 * 1.7892418) = 0.0787299
    assert abs(EULER_GAMMA - 0.5772156649) < 1e-10
    assert expected_max_sharpe(10, 0.0025) == pytest.approx(0.0787299, abs=1e-6)
    # DSR of SR 0.1 over T = 253, normal: z = (0.1 - 0.0787299) * sqrt(252) / sqrt(1.005)
    #   = 0.0212701 * 15.8745079 / 1.0024969 = 0.336811 ; Phi(0.336811) = 0.631870
    assert deflated_sharpe_ratio(0.1, 253, 10, 0.0025) == pytest.approx(0.631870, abs=1e-5)
    # One trial: nothing to deflate, DSR = PSR.
    assert deflated_sharpe_ratio(0.1, 253, 1, 0.0025) == pytest.approx(0.943346, abs=1e-6)


def test_dsr_falls_as_trials_grow() -> None:
    values = [deflated_sharpe_ratio(0.1, 253, n, 0.0025) for n in (1, 2, 5, 10, 100, 1000)]
    assert all(a > b for a, b in itertools.pairwise(values)), values


# --------------------------------------------------------------------------- ledger


@pytest.fixture
def led(tmp_path: Path) -> Ledger:
    ledger = Ledger(tmp_path / "ledger")
    yield ledger
    ledger.close()


def test_log_backtest_stores_metrics_and_best_tracks_them(led: Ledger) -> None:
    r1 = sample_returns(1)
    r2 = [x * 0.5 for x in sample_returns(2)]  # lower volatility
    rec = led.log_backtest("LSTM_v1", "AAPL", r1, predictions=[0.1, -0.2], actuals=[0.2, 0.1],
                           params={"epochs": 50}, tags={"run": "a"}, notes="first")
    led.log_backtest("XGB_v2", "AAPL", r2)
    want = loop_metrics(r1, 252)
    assert rec["sharpe"] == pytest.approx(want["sharpe"])
    assert rec["accuracy"] == pytest.approx(0.5) and rec["mse"] == pytest.approx(0.05)
    for k in ("sortino", "calmar", "volatility", "n_periods", "skew", "kurtosis", "psr"):
        assert rec["metrics"][k] == pytest.approx(want[k]), k
    hist = led.history(ticker="AAPL")
    assert len(hist) == 2
    assert hist.loc[0, "psr"] == pytest.approx(want["psr"])
    best = led.best("AAPL")
    for k in ("sortino", "calmar", "volatility", "psr", "n_periods", "skew", "kurtosis"):
        assert best[f"best_{k}"]["model"] in ("LSTM_v1", "XGB_v2"), k
    vols = {m: hist.set_index("model_name").loc[m, "volatility"] for m in ("LSTM_v1", "XGB_v2")}
    assert best["best_volatility"]["model"] == min(vols, key=vols.get)  # lower is better
    assert led.metric_directions()["volatility"] is False
    assert led.metric_directions()["sortino"] is True


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"returns": [0.01, float("nan")]}, "returns"),
        ({"returns": [0.01]}, "returns"),
        ({"returns": [0.01, 0.02], "predictions": [1.0]}, "actuals"),
        ({"returns": [0.01, 0.02], "predictions": [1.0, 2.0], "actuals": [1.0]}, "actuals"),
    ],
)
def test_log_backtest_rejects_and_stores_nothing(led: Ledger, kwargs: dict, argument: str) -> None:
    with pytest.raises(ValidationError, match=argument):
        led.log_backtest("M", "AAPL", **kwargs)
    assert led.history().empty
    assert "sortino" not in led.metric_directions()


def test_log_backtest_bad_label_stores_nothing(led: Ledger) -> None:
    with pytest.raises(ValidationError, match="ticker"):
        led.log_backtest("M", " ", sample_returns())
    assert led.history().empty and "psr" not in led.metric_directions()


def test_sharpe_confidence_against_hand_formulas(led: Ledger) -> None:
    rng = np.random.default_rng(5)
    series = {f"M{i}": rng.normal(0.0004 * i, 0.01, 400).tolist() for i in range(5)}
    for name, r in series.items():
        led.log_backtest(name, "AAPL", r)
    # A worse second evaluation of M4 must not replace its best.
    worse = rng.normal(-0.001, 0.01, 400).tolist()
    led.log_backtest("M4", "AAPL", worse)
    conf = led.sharpe_confidence("AAPL").set_index("model_name")
    assert list(conf["sharpe"]) == sorted(conf["sharpe"], reverse=True)

    per_model = {m: loop_metrics(r, 252) for m, r in series.items()}
    # Every evaluation is a trial (the worse M4 run too): N = 6, V over 6 annualised Sharpes.
    annual = [v["sharpe"] for v in per_model.values()] + [loop_metrics(worse, 252)["sharpe"]]
    var = statistics.variance(annual)
    n = 6
    sr0 = math.sqrt(var) * (
        (1 - 0.5772156649) * statistics.NormalDist().inv_cdf(1 - 1 / n)
        + 0.5772156649 * statistics.NormalDist().inv_cdf(1 - 1 / (n * math.e))
    ) / math.sqrt(252)
    srs = {m: v["sharpe"] / math.sqrt(252) for m, v in per_model.items()}
    for m, v in per_model.items():
        row = conf.loc[m]
        assert row["sharpe"] == pytest.approx(v["sharpe"])
        assert row["psr"] == pytest.approx(v["psr"]) and row["psr_source"] == "stored"
        sr, skew, kurt = srs[m], v["skew"], v["kurtosis"]
        dsr = phi((sr - sr0) * math.sqrt(400 - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr * sr))
        assert row["dsr"] == pytest.approx(dsr, rel=1e-9)
        assert row["dsr"] < row["psr"]
        assert row["n_trials"] == 6
        assert row["sr0_per_period"] == pytest.approx(sr0)
        assert row["dsr_reason"] == ""


def test_sharpe_confidence_single_model_and_manual_records(led: Ledger) -> None:
    led.log_backtest("Only", "MSFT", sample_returns(3))
    conf = led.sharpe_confidence("MSFT")
    assert len(conf) == 1 and conf.loc[0, "dsr"] == conf.loc[0, "psr"]

    # A hand-logged Sharpe with n_periods: PSR computed with skew 0, kurtosis 3.
    led.log("Manual", "TSLA", sharpe=0.1 * math.sqrt(252), metrics={"n_periods": 253})
    led.log("NoT", "TSLA", sharpe=2.0)
    conf = led.sharpe_confidence("TSLA").set_index("model_name")
    assert conf.loc["Manual", "psr_source"] == "computed"
    assert conf.loc["Manual", "psr"] == pytest.approx(0.943346, abs=1e-6)  # test_psr_by_hand
    assert math.isnan(conf.loc["NoT", "psr"]) and math.isnan(conf.loc["NoT", "dsr"])
    assert "n_periods" in conf.loc["NoT", "dsr_reason"]
    assert conf.loc["Manual", "n_trials"] == 2
    assert led.sharpe_confidence("NOPE").empty
