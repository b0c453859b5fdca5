"""Equity and drawdown curves (perfledger.stats.equity) against loops written here and
against the summary metrics of from_returns; index kept; bad input named."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from perfledger import ValidationError
from perfledger.returns import from_returns
from perfledger.stats import drawdown_curve, equity_curve


def loops(r: list[float]) -> tuple[list[float], list[float]]:
    wealth, peak, eq, dd = 1.0, 1.0, [], []
    for v in r:
        wealth *= 1 + v
        peak = max(peak, wealth)
        eq.append(wealth - 1)
        dd.append(wealth / peak - 1)
    return eq, dd


def test_matches_loops_and_summary_metrics() -> None:
    r = list(np.random.default_rng(1).normal(0.0004, 0.012, 800))
    eq, dd = loops(r)
    np.testing.assert_allclose(equity_curve(r).to_numpy(), eq, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(drawdown_curve(r).to_numpy(), dd, rtol=1e-12, atol=1e-15)
    summary = from_returns(r)
    assert equity_curve(r).iloc[-1] == pytest.approx(summary["total_return"], rel=1e-12)
    assert drawdown_curve(r).min() == pytest.approx(summary["drawdown"], rel=1e-12)


def test_first_period_loss_is_a_drawdown_and_gains_are_not() -> None:
    assert drawdown_curve([-0.1, 0.05, 0.2]).tolist() == pytest.approx([-0.1, -0.055, 0.0])
    assert (drawdown_curve([0.01, 0.02]) == 0).all()
    assert not np.signbit(drawdown_curve([0.01, 0.02])).any()  # never -0.0


def test_datetime_index_is_kept_and_lists_get_positions() -> None:
    idx = pd.bdate_range("2024-01-01", periods=5)
    s = pd.Series([0.01, -0.02, 0.0, 0.03, -0.01], index=idx)
    for curve in (equity_curve(s), drawdown_curve(s)):
        assert isinstance(curve.index, pd.DatetimeIndex) and curve.index.equals(idx)
    assert equity_curve([0.1, 0.1]).index.equals(pd.RangeIndex(2))
    assert equity_curve(np.array([0.1, 0.1])).tolist() == pytest.approx([0.1, 0.21])
    assert equity_curve([0.1]).name == "equity" and drawdown_curve([0.1]).name == "drawdown"


def test_total_loss_stays_at_minus_one() -> None:
    assert equity_curve([0.5, -1.0, 0.3]).tolist() == [0.5, -1.0, -1.0]
    assert drawdown_curve([0.5, -1.0, 0.3]).tolist() == [0.0, -1.0, -1.0]


@pytest.mark.parametrize("returns", [[], [0.01, math.nan], [math.inf], [0.1, -1.5], "abc", None, [[0.1]]])
def test_bad_input_names_returns(returns) -> None:
    for fn in (equity_curve, drawdown_curve):
        with pytest.raises(ValidationError) as info:
            fn(returns)
        assert info.value.problems[0][1] == "returns"


def test_public_names_import_from_the_documented_places() -> None:
    """Every new statistic is importable from perfledger.stats, the Sharpe-confidence ones
    also from perfledger.returns beside the PSR/DSR; importing perfledger.returns does not
    pull pandas in (it never did)."""
    import subprocess
    import sys

    import perfledger.returns as public
    import perfledger.stats as stats

    for name in stats.__all__:
        assert getattr(stats, name) is not None
    for name in ("min_track_record_length", "deflated_sharpe_ratio_effective", "effective_trials",
                 "from_returns", "deflated_sharpe_ratio", "probabilistic_sharpe_ratio"):
        assert name in public.__all__ and callable(getattr(public, name))
    out = subprocess.run([sys.executable, "-c", "import sys, perfledger.returns, perfledger.stats; "
                          "print('pandas' in sys.modules)"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
