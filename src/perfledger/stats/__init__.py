"""The statistics: metrics computed from a return series (:mod:`.returns`: Sharpe, Sortino,
drawdown, PSR, DSR), a backtest as a ledger record and the confidence in a ticker's best
Sharpe (:mod:`.backtest`), the decay test (:mod:`.decay`), and whether a sweep is overfit:
the Probability of Backtest Overfitting (:mod:`.overfitting`), and how long a record must be
before its Sharpe is believable (:mod:`.track_record`) and how many independent trials a
sweep made (:mod:`.trials`); and the equity and underwater curves of a return series
(:mod:`.equity`).

Pure computation on the values it is given (numpy, pandas, the standard library): it
imports :mod:`perfledger.records` and :mod:`perfledger.errors` only; the
:class:`~perfledger.Ledger` reads, calls and logs. ``perfledger.returns`` is the public
name of :mod:`.returns`.
"""

from .equity import drawdown_curve, equity_curve
from .overfitting import Overfitting, probability_of_backtest_overfitting
from .track_record import TrackRecord, min_track_record_length, track_record_of
from .trials import (
    deflated_sharpe_ratio_effective,
    effective_trials,
    effective_trials_from_correlation,
    expected_max_sharpe_effective,
)

__all__ = [
    "Overfitting",
    "TrackRecord",
    "deflated_sharpe_ratio_effective",
    "drawdown_curve",
    "effective_trials",
    "effective_trials_from_correlation",
    "equity_curve",
    "expected_max_sharpe_effective",
    "min_track_record_length",
    "probability_of_backtest_overfitting",
    "track_record_of",
]
