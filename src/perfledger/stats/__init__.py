"""The statistics: metrics computed from a return series (:mod:`.returns`: Sharpe, Sortino,
drawdown, PSR, DSR), a backtest as a ledger record and the confidence in a ticker's best
Sharpe (:mod:`.backtest`), the decay test (:mod:`.decay`); whether a sweep is overfit, by
the Probability of Backtest Overfitting (:mod:`.overfitting`); how long a record must be
before its Sharpe is believable (:mod:`.track_record`); how many independent trials a sweep
made and the DSR deflated by that number (:mod:`.trials`); and the equity and underwater
curves of a return series (:mod:`.equity`).

Pure computation on the values it is given (numpy, pandas, the standard library): it
imports :mod:`perfledger.records` and :mod:`perfledger.errors` only; the
:class:`~perfledger.Ledger` reads, calls and logs. ``perfledger.returns`` is the public
name of :mod:`.returns` (and also exposes MinTRL and the effective-trials DSR).

The names below are imported on first use, so ``import perfledger.returns`` stays a numpy
import (the equity curves need pandas).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .equity import drawdown_curve, equity_curve
    from .overfitting import Overfitting, probability_of_backtest_overfitting
    from .track_record import TrackRecord, min_track_record_length, track_record_of
    from .trials import (
        deflated_sharpe_ratio_effective,
        effective_trials,
        effective_trials_from_correlation,
        expected_max_sharpe_effective,
    )

#: Public name → the module of this package that holds it.
_EXPORTS = {
    "drawdown_curve": "equity",
    "equity_curve": "equity",
    "Overfitting": "overfitting",
    "probability_of_backtest_overfitting": "overfitting",
    "TrackRecord": "track_record",
    "min_track_record_length": "track_record",
    "track_record_of": "track_record",
    "deflated_sharpe_ratio_effective": "trials",
    "effective_trials": "trials",
    "effective_trials_from_correlation": "trials",
    "expected_max_sharpe_effective": "trials",
}

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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
