"""The Deflated Sharpe Ratio deflates by every trial, in one unit (issue 10, item 1).

Expected values come from an independent computation: the returns' moments from
``scipy.stats``, Φ and Φ⁻¹ from ``scipy.stats.norm``, the 2014 paper's formulas written out
here; never perfledger's own functions.
"""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from scipy.stats import norm

from perfledger import Ledger, ValidationError
from perfledger.stats.backtest import sharpe_confidence
from perfledger.stats.returns import deflated_sharpe_ratio, expected_max_sharpe, from_returns

GAMMA = 0.5772156649015329


def sr0(n: int, variance: float) -> float:
    """Bailey & López de Prado (2014), eq. for E[max SR] of n unskilled trials."""
    return math.sqrt(variance) * ((1 - GAMMA) * norm.ppf(1 - 1 / n) + GAMMA * norm.ppf(1 - 1 / (n * math.e)))


def dsr(sr: float, sr_star: float, t: int, skew: float, kurt: float) -> float:
    spread = math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return float(norm.cdf((sr - sr_star) * math.sqrt(t - 1) / spread))


def moments(r: np.ndarray, ppy: float) -> tuple[float, float, float]:
    """(annualised Sharpe, skew, non-excess kurtosis) by scipy."""
    return (float(np.mean(r) / np.std(r, ddof=1) * math.sqrt(ppy)), float(scipy.stats.skew(r)),
            float(scipy.stats.kurtosis(r, fisher=True) + 3.0))


@pytest.fixture
def led(tmp_path: Path) -> Ledger:
    ledger = Ledger(tmp_path / "ledger")
    yield ledger
    ledger.close()


def test_paper_worked_example() -> None:
    # Bailey & López de Prado (2014), section "A numerical example": N = 100 trials whose
    # annualised Sharpes have variance 1/2; the best has SR 2.5 annualised over T = 1250
    # daily periods (250 a year), skew -3, kurtosis 10 -> SR0 = 0.1132 per period, DSR = 0.9004.
    assert expected_max_sharpe(100, 0.5) / math.sqrt(250) == pytest.approx(0.1132, abs=1e-4)
    # Through sharpe_confidence: 100 logged trials, variance of their annualised Sharpes 1/2.
    z = np.random.default_rng(3).normal(size=99)
    z = (z - z.mean()) / z.std(ddof=1)
    mean = 2.5 / 100
    scale = math.sqrt((0.5 * 99 - (2.5 - mean) ** 2 - 99 * mean**2) / 98)
    sharpes = np.concatenate(([2.5], scale * z))
    assert statistics.variance(sharpes) == pytest.approx(0.5) and sharpes.max() == 2.5
    hist = pd.DataFrame({
        "model_name": [f"M{i}" for i in range(100)],
        "timestamp": pd.date_range("2024-01-01", periods=100, freq="h", tz="UTC"),
        "sharpe": sharpes, "periods_per_year": 250.0, "n_periods": 1250.0,
        "skew": -3.0, "kurtosis": 10.0, "psr": np.nan,
    })
    best = sharpe_confidence(hist).iloc[0]
    assert best["model_name"] == "M0" and best["n_trials"] == 100
    assert best["sr0_per_period"] == pytest.approx(0.1132, abs=1e-4)
    assert best["dsr"] == pytest.approx(0.9004, abs=1e-4)
    per_period = math.sqrt(250)
    assert best["dsr"] == pytest.approx(dsr(2.5 / per_period, sr0(100, 0.5) / per_period, 1250, -3, 10))


def test_every_logged_run_is_a_trial(led: Ledger) -> None:
    # A sweep: 30 noise backtests logged as "Tuned", one as "Base". The best of 30 runs of
    # nothing looks good (PSR 0.91, and 0.89 when deflated by 2 "models"); over all 31 trials
    # it is what it is, the luckiest draw.
    rng = np.random.default_rng(3)
    runs = [rng.normal(0, 0.01, 1260) for _ in range(31)]
    for r in runs[:30]:
        led.log_backtest("Tuned", "SPY", r)
    led.log_backtest("Base", "SPY", runs[30])
    conf = led.sharpe_confidence("SPY").set_index("model_name")

    stats = [moments(r, 252) for r in runs]
    annual = [s for s, _, _ in stats]
    n, var = 31, statistics.variance(annual)
    best = int(np.argmax(annual[:30]))
    s, sk, ku = stats[best]
    want = dsr(s / math.sqrt(252), sr0(n, var) / math.sqrt(252), 1260, sk, ku)
    row = conf.loc["Tuned"]
    assert row["sharpe"] == pytest.approx(s) and row["n_trials"] == 31
    assert row["sr0_annualised"] == pytest.approx(sr0(n, var))
    assert row["dsr"] == pytest.approx(want, rel=1e-9)
    assert row["psr"] > 0.9 and row["dsr"] < 0.4  # was 0.89 when N counted model names
    assert conf.loc["Base", "dsr"] == pytest.approx(
        dsr(annual[30] / math.sqrt(252), sr0(n, var) / math.sqrt(252), 1260, *stats[30][1:]), rel=1e-9
    )


def _with_sharpe(rng: np.random.Generator, sharpe: float, ppy: int, years: int = 5) -> np.ndarray:
    z = rng.normal(size=ppy * years)
    z = (z - z.mean()) / z.std(ddof=1)
    return 0.02 * (z + sharpe / math.sqrt(ppy))


def test_mixed_frequencies_equal_evidence_equal_dsr(led: Ledger) -> None:
    # A daily and a monthly backtest with the same annualised Sharpe over the same 5 years,
    # among three other daily trials: one SR0 in annualised units, converted per record.
    rng = np.random.default_rng(7)
    runs = {"Daily": (_with_sharpe(rng, 1.2, 252), 252), "Monthly": (_with_sharpe(rng, 1.2, 12), 12)}
    runs.update({f"Other{s}": (_with_sharpe(rng, s, 252), 252) for s in (0.1, 0.4, 0.7)})
    for name, (r, ppy) in runs.items():
        led.log_backtest(name, "SPY", r, periods_per_year=ppy)
    conf = led.sharpe_confidence("SPY").set_index("model_name")
    stats = {m: moments(r, ppy) for m, (r, ppy) in runs.items()}
    var = statistics.variance([s for s, _, _ in stats.values()])
    for m, (r, ppy) in runs.items():
        s, sk, ku = stats[m]
        want = dsr(s / math.sqrt(ppy), sr0(5, var) / math.sqrt(ppy), len(r), sk, ku)
        assert conf.loc[m, "dsr"] == pytest.approx(want, rel=1e-9), m
    assert conf.loc["Daily", "sharpe"] == pytest.approx(conf.loc["Monthly", "sharpe"])
    assert abs(conf.loc["Daily", "dsr"] - conf.loc["Monthly", "dsr"]) < 0.03  # old code: 0.0006 vs 0.90
    assert conf.loc["Monthly", "sr0_per_period"] == pytest.approx(
        conf.loc["Daily", "sr0_per_period"] * math.sqrt(252 / 12)
    )


def test_user_stated_trials(led: Ledger) -> None:
    rng = np.random.default_rng(1)
    runs = [rng.normal(0.0005, 0.01, 500) for _ in range(3)]
    for i, r in enumerate(runs):
        led.log_backtest(f"M{i}", "AAPL", r)
    logged = led.sharpe_confidence("AAPL")
    stated = led.sharpe_confidence("AAPL", n_trials=200)
    assert (logged["n_trials"] == 3).all() and (stated["n_trials"] == 200).all()
    var = statistics.variance([moments(r, 252)[0] for r in runs])
    assert stated.loc[0, "sr0_annualised"] == pytest.approx(sr0(200, var))
    assert (stated["dsr"] < logged["dsr"]).all()
    for bad in (2, 0, -1, 2.5, True, "many"):
        with pytest.raises(ValidationError, match=rf"n_trials={bad!r}"):
            led.sharpe_confidence("AAPL", n_trials=bad)
    # Every whole number below the logged trials states the same range (0 said "from 1",
    # 2 "from 3": the review of issue 22, finding 4).
    for bad in (2, 1, 0, -1):
        with pytest.raises(ValidationError, match=r"from 3 to"):
            led.sharpe_confidence("AAPL", n_trials=bad)


def test_unknown_variance_is_nan_with_a_reason_never_the_psr(led: Ledger) -> None:
    led.log_backtest("Only", "AAPL", np.random.default_rng(2).normal(0.001, 0.01, 300))
    conf = led.sharpe_confidence("AAPL", n_trials=50)
    assert math.isnan(conf.loc[0, "dsr"]) and conf.loc[0, "psr"] > 0.5
    assert "n_trials=50" in conf.loc[0, "dsr_reason"] and "2 logged" in conf.loc[0, "dsr_reason"]
    assert led.sharpe_confidence("AAPL").loc[0, "dsr"] == conf.loc[0, "psr"]  # one trial: DSR = PSR


@pytest.mark.parametrize("variance", [float("nan"), -0.1, float("inf")])
def test_bad_variance_is_refused(variance: float) -> None:
    with pytest.raises(ValidationError, match="variance="):
        expected_max_sharpe(10, variance)
    with pytest.raises(ValidationError, match="variance="):
        deflated_sharpe_ratio(0.1, 253, 10, variance)
    with pytest.raises(ValidationError, match="n_trials=0"):
        expected_max_sharpe(0, 0.1)


@pytest.mark.parametrize("ppy", [1e300, 1e17, 1e308])
def test_huge_periods_per_year_is_a_validation_error(ppy: float, led: Ledger) -> None:
    with pytest.raises(ValidationError, match="periods_per_year=") as info:
        from_returns([0.05, -0.01, 0.03], periods_per_year=ppy)
    assert info.value.problems[0][1] == "periods_per_year"
    with pytest.raises(ValidationError, match="periods_per_year="):
        led.log_backtest("M", "AAPL", [0.05, -0.01, 0.03], periods_per_year=ppy)
    assert led.history().empty


def test_cli_n_trials(tmp_path: Path) -> None:
    import json

    from cli_runner import Completed, run_cli

    store = tmp_path / "ledger"
    rng = np.random.default_rng(3)
    with Ledger(store) as led:
        for _ in range(3):
            led.log_backtest("Sweep", "AAPL", rng.normal(0.0005, 0.01, 300))
        led.log_backtest("Base", "AAPL", rng.normal(0.0005, 0.01, 300))
        want = led.sharpe_confidence("AAPL", n_trials=40).set_index("model_name")

    def cli(*args: str) -> Completed:
        return run_cli("--store", str(store), *args)

    table = cli("leaderboard", "--ticker", "AAPL")
    assert table.returncode == 0 and "4 trial(s) on AAPL" in table.stdout, table
    out = cli("leaderboard", "--ticker", "AAPL", "--n-trials", "40", "--format", "json")
    assert out.returncode == 0, out.stderr
    for row in json.loads(out.stdout):
        assert row["dsr"] == pytest.approx(want.loc[row["model_name"], "dsr"])
    assert "40 trial(s)" in cli("leaderboard", "--ticker", "AAPL", "--n-trials", "40").stdout
    low = cli("leaderboard", "--ticker", "AAPL", "--n-trials", "2")
    assert low.returncode == 2 and "n_trials=2" in low.stderr and "Traceback" not in low.stderr
    no_ticker = cli("leaderboard", "--n-trials", "40")
    assert no_ticker.returncode == 2 and "--n-trials" in no_ticker.stderr


def test_dashboard_note_counts_trials_and_states_why_no_dsr() -> None:
    from perfledger.dashboard import insights

    conf = pd.DataFrame({"model_name": ["Tuned", "Base"], "sharpe": [1.0, 0.6], "psr": [0.99, 0.9],
                         "dsr": [0.37, 0.2], "n_trials": [31, 31], "dsr_reason": ["", ""]})
    kind, text = insights.confidence_note(conf, "SPY")
    assert kind == "warning" and "among 31 trials" in text and "31 trials (evaluations with a Sharpe)" in text
    nan = conf.assign(dsr=[math.nan, math.nan], dsr_reason=["n_trials=50 but only 1 trial logged"] * 2)
    kind, text = insights.confidence_note(nan, "SPY")
    # The note is Markdown with stored text escaped: read it as the page renders it.
    shown = re.sub(r"\\(.)", r"\1", text)
    assert kind == "info" and "n_trials=50 but only 1 trial logged" in shown
