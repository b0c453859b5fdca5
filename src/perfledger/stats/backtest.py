"""Backtests as ledger records, and how much to trust the best Sharpe on a ticker.

:func:`backtest_metrics` turns per-period returns into the ledger's metrics
(:func:`perfledger.stats.returns.from_returns`): the core ones for their columns, the rest as
custom metrics with the directions in :data:`BACKTEST_DIRECTIONS`. :func:`sharpe_confidence`
answers the question a leaderboard cannot: with N trials (every logged evaluation with a
Sharpe on a ticker) is the winner's Sharpe skill or the luck of the draw? (Probabilistic and
Deflated Sharpe Ratios, Bailey & López de Prado 2012 and 2014; see ``docs/metrics.md``.)

Both compute from data they are given; ``Ledger.log_backtest`` and
``Ledger.sharpe_confidence`` read, register and log.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..records.kept_returns import PERIODS_METRIC
from ..records.record import CORE_METRICS
from ..records.validation import MIN_MAGNITUDE, magnitude_message
from .returns import (
    check_n_trials,
    check_periods_per_year,
    expected_max_sharpe,
    from_returns,
    probabilistic_sharpe_ratio,
)
from .track_record import min_track_record_length
from .trials import expected_max_sharpe_effective

if TYPE_CHECKING:
    import pandas as pd

#: Custom metrics of a backtest (:func:`backtest_metrics`), with True when higher is better.
BACKTEST_DIRECTIONS: dict[str, bool] = {
    "sortino": True,
    "calmar": True,
    "psr": True,
    "n_periods": True,
    "volatility": False,
    "skew": True,
    "kurtosis": False,
}
#: The tag that says a record is a trial of a search (an Optuna trial, say) and how it ended.
TRIAL_STATE_TAG = "trial_state"
#: The ``trial_state`` values of trials that ran and ended without a value (pruned early, or
#: failed): :func:`sharpe_confidence` counts them in N all the same, since the researcher
#: tried those configurations and would have kept the best of them.
UNSCORED_STATES: tuple[str, ...] = ("pruned", "failed")

CONFIDENCE_COLUMNS = [
    "model_name", "timestamp", "sharpe", "periods_per_year", "sharpe_per_period", "n_periods",
    "skew", "kurtosis", "psr", "psr_source", "n_trials", "n_effective", "sr0_annualised",
    "sr0_per_period", "dsr", "dsr_reason", "min_trl_periods", "min_trl_years",
]
#: The confidence at which the minimum track record length is stated (PSR >= 0.95 against 0).
MIN_TRL_CONFIDENCE = 0.95


def backtest_metrics(
    returns: Any, periods_per_year: float = 252, predictions: Any = None, actuals: Any = None
) -> tuple[dict[str, float | None], dict[str, float]]:
    """A backtest's ``(core, custom)`` metrics: the core metrics for their columns (None when
    undefined), and ``sortino, calmar, volatility, n_periods, skew, kurtosis, psr`` plus
    ``periods_per_year`` as custom metrics."""
    values = from_returns(returns, periods_per_year, predictions, actuals)
    # A computed value too small to store (e.g. a PSR of 1e-200) is zero for every purpose.
    values = {k: (0.0 if isinstance(v, float) and abs(v) < MIN_MAGNITUDE else v) for k, v in values.items()}
    for name, value in values.items():  # computed, so a value the ledger cannot store blames `returns`
        if (msg := magnitude_message(name, value)) is not None:
            raise ValidationError(f"returns give {msg}: are they simple per-period returns "
                                  "(0.01 for 1%)?", [(None, "returns", msg)])
    core = {m: values.get(m) for m in CORE_METRICS}
    custom = {m: values[m] for m in BACKTEST_DIRECTIONS if m in values}
    custom[PERIODS_METRIC] = float(periods_per_year)
    return core, custom


def _num(row: Mapping[str, Any], name: str) -> float:
    v = row.get(name)
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return f


def sharpe_confidence(
    history: pd.DataFrame, periods_per_year: float = 252, n_trials: int | None = None,
    unscored: int = 0, effective: tuple[float, int] | None = None,
) -> pd.DataFrame:
    """One row per model in ``history`` (one ticker's): its best Sharpe, PSR and Deflated
    Sharpe Ratio, deflated by *every* trial.

    * A trial is every record in ``history`` with a ``sharpe``: 30 backtests logged as
      "Tuned" and one as "Base" are 31 trials, not 2 models (Bailey & López de Prado deflate
      by every configuration tried, so the luckiest of many runs is not presented as skill).
      ``n_trials`` (>= the logged trials, else a ValidationError) states more, when more were
      tried than logged. N (``n_trials`` column) is that count.
    * ``unscored`` trials (records tagged ``trial_state=pruned|failed`` without a Sharpe: a
      search's trials that ran and were stopped or crashed, :data:`UNSCORED_STATES`) count in
      N too: they were tried, so the best Sharpe is the best of them all. They add nothing to
      V (they have no Sharpe). ``n_trials`` must be at least the logged plus unscored trials.
    * SR₀ is computed once, in annualised units: ``sr0_annualised`` = √V·((1−γ)Φ⁻¹(1−1/N) +
      γΦ⁻¹(1−1/(N·e))), V the sample variance (ddof=1) of the annualised Sharpes of all
      logged trials (as stored: annualised), so a daily and a monthly backtest share one V in
      one unit. Each row converts it to its own period length:
      ``sr0_per_period`` = sr0_annualised / √ppy. 0 when N = 1.
    * The best record of a model is its highest ``sharpe`` (ties: the earliest).
      ``sharpe_per_period`` = sharpe / √ppy, ppy the record's ``periods_per_year`` metric
      (stored by ``log_backtest``), else the ``periods_per_year`` argument.
    * ``psr``: the record's stored ``psr`` metric (``psr_source="stored"``); else computed
      from the per-period Sharpe, the record's ``n_periods`` and its ``skew``/``kurtosis``
      metrics, defaulting to 0 and 3 (normal returns) when absent (``"computed"``); NaN when
      the record has no ``n_periods`` (or fewer than 2), ``psr_source`` then empty.
    * ``dsr`` = the PSR formula against ``sr0_per_period`` with the same T/skew/kurtosis;
      equal to ``psr`` when N = 1. NaN when it cannot be computed, never a favourable guess:
      ``dsr_reason`` then says why (no ``n_periods``; N > 1 but fewer than 2 logged Sharpes to
      estimate V from; skew and kurtosis leaving no positive variance). Empty otherwise.
    * ``effective`` = (N_eff, k): the effective number of independent trials
      (:func:`perfledger.stats.trials.effective_trials`) of the k logged trials whose return
      series were kept, aligned on their common periods. Without ``n_trials``, the DSR's N
      is then N_eff + (N − k) (the trials without a kept series counted as independent) and
      SR₀ uses the real-valued formula (:func:`~.trials.expected_max_sharpe_effective`);
      ``n_effective`` shows that N (NaN without ``effective``, or when ``n_trials`` overrides).
    * ``min_trl_periods``/``min_trl_years``: the minimum track record length of the row's
      best record (Bailey & López de Prado 2012, :mod:`.track_record`) for a PSR of
      :data:`MIN_TRL_CONFIDENCE` against a Sharpe of 0, with its skew/kurtosis: compare with
      ``n_periods``. inf when the Sharpe is not positive.

    Sorted by Sharpe, best first.
    """
    import numpy as np
    import pandas as pd

    default_ppy = check_periods_per_year(periods_per_year)
    hist = history
    sharpes = pd.to_numeric(hist["sharpe"], errors="coerce") if "sharpe" in hist.columns else None
    if sharpes is None or not np.isfinite(sharpes.to_numpy(dtype=float)).any():
        if n_trials is not None:  # checked all the same: a bad value is refused on any ledger
            check_n_trials(n_trials)
        return pd.DataFrame(columns=CONFIDENCE_COLUMNS)
    hist = hist[np.isfinite(sharpes.to_numpy(dtype=float))]
    logged = len(hist)
    tried = logged + max(int(unscored), 0)
    n = tried if n_trials is None else check_n_trials(n_trials, at_least=tried)
    annual = hist["sharpe"].to_numpy(dtype=float)
    variance = float(np.var(annual, ddof=1)) if logged > 1 else math.nan
    n_eff = math.nan
    if effective is not None and n_trials is None and logged > 1:
        n_eff = min(max(float(effective[0]) + (n - int(effective[1])), 1.0), float(n))
    if n == 1:
        sr0, why = 0.0, ""
    elif math.isfinite(n_eff):
        sr0, why = expected_max_sharpe_effective(n_eff, variance), ""
    elif logged < 2:
        sr0 = math.nan
        why = (f"n_trials={n} but only {logged} trial logged: the variance of the trials' Sharpes "
               "needs at least 2 logged Sharpes")
    else:
        sr0, why = expected_max_sharpe(n, variance), ""
    # Highest Sharpe per model; history is oldest first, so a stable sort keeps the earliest tie.
    best = hist.sort_values("sharpe", ascending=False, kind="stable").drop_duplicates(
        "model_name", keep="first"
    )
    rows = [_confidence_row(rec, default_ppy, n, sr0, why) | {"n_effective": n_eff}
            for rec in best.to_dict("records")]
    return pd.DataFrame(rows, columns=CONFIDENCE_COLUMNS).reset_index(drop=True)


def _confidence_row(
    rec: Mapping[str, Any], default_ppy: float, n: int, sr0: float, why: str
) -> dict[str, Any]:
    """One model's row of :func:`sharpe_confidence`, from its best record and the ticker's
    annualised SR₀ (NaN with ``why`` when it is unknown)."""
    ppy = _num(rec, PERIODS_METRIC)
    if not (math.isfinite(ppy) and ppy > 0):
        ppy = default_ppy
    sr = float(rec["sharpe"]) / math.sqrt(ppy)
    t = _num(rec, "n_periods")
    skew, kurt = _num(rec, "skew"), _num(rec, "kurtosis")
    skew = skew if math.isfinite(skew) else 0.0
    kurt = kurt if math.isfinite(kurt) else 3.0
    stored = _num(rec, "psr")
    if math.isfinite(stored):
        psr, source = stored, "stored"
    else:
        psr = probabilistic_sharpe_ratio(sr, t, skew, kurt)
        source = "computed" if math.isfinite(psr) else ""
    sr0_pp = sr0 / math.sqrt(ppy)
    trl = min_track_record_length(sr, skew, kurt, 0.0, MIN_TRL_CONFIDENCE, ppy)
    if not (t >= 2):
        dsr, why = math.nan, "no n_periods (at least 2) on its best record: log it with log_backtest"
    elif n == 1:
        dsr = psr
    elif why:
        dsr = math.nan
    else:
        dsr = probabilistic_sharpe_ratio(sr, t, skew, kurt, sr_benchmark=sr0_pp)
        if not math.isfinite(dsr):
            why = f"skew={skew:g} and kurtosis={kurt:g} leave the Sharpe estimate no positive variance"
    return {
        "model_name": rec["model_name"], "timestamp": rec["timestamp"], "sharpe": float(rec["sharpe"]),
        "periods_per_year": ppy, "sharpe_per_period": sr, "n_periods": t, "skew": skew,
        "kurtosis": kurt, "psr": psr, "psr_source": source, "n_trials": n,
        "sr0_annualised": sr0, "sr0_per_period": sr0_pp, "dsr": dsr, "dsr_reason": why,
        "min_trl_periods": trl.periods, "min_trl_years": trl.years,
    }
