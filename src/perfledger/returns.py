"""The public name of :mod:`perfledger.stats.returns` (documented as
``perfledger.returns.from_returns``): metrics computed from a return series, with the
Sharpe-confidence statistics beside the PSR and DSR: the minimum track record length
(:mod:`perfledger.stats.track_record`) and the DSR deflated by the effective number of
trials (:mod:`perfledger.stats.trials`). numpy and the standard library only."""

from .stats.returns import *  # noqa: F403  (the documented names, exactly)
from .stats.returns import __all__ as _returns_all
from .stats.track_record import TrackRecord, min_track_record_length, track_record_of
from .stats.trials import (
    deflated_sharpe_ratio_effective,
    effective_trials,
    effective_trials_from_correlation,
    expected_max_sharpe_effective,
)

__all__ = [
    *_returns_all,
    "TrackRecord",
    "deflated_sharpe_ratio_effective",
    "effective_trials",
    "effective_trials_from_correlation",
    "expected_max_sharpe_effective",
    "min_track_record_length",
    "track_record_of",
]
