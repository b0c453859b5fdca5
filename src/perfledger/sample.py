"""Plausible sample evaluations, for first runs, demos and the dashboard's "add sample data".

A small research history that lights up every view and every example in README:

* **nightly backtests** (tag ``run=nightly``): each (ticker, model) pair has a persistent
  skill (an annualised Sharpe) and is re-evaluated every other day over the last 90 days on
  a simulated two-year window of daily returns; every metric is computed from those returns
  the one documented way (:func:`perfledger.stats.backtest.backtest_metrics`), so PSR and
  DSR have what they need (``n_periods``, ``skew``, ``kurtosis``). Each model carries its
  params (``max_depth``, ``lr``, ``epochs``, ...), so ``leaderboard --by param:max_depth``
  and ``history --tag run=nightly --param max_depth=6`` find rows.
* **one model that really decays**: :data:`DECAYING` (LSTM_v1 on AAPL, the first page's ticker) loses its
  edge in its latest 20 evaluations, so ``decay --recent 20 --alpha 0.01`` flags it and
  nothing else (45 evaluations per pair: ``recent + 10`` with the defaults).
  Each keeps its daily return series (dated: the business days of its window, ending on
  its evaluation's day), so the Backtests tab draws its equity and drawdown curves and
  MinTRL and the effective number of trials have their input.
* **one sweep that is really overfit** (tag ``run=sweep-3``, :data:`SWEEP_MODEL` on AAPL):
  :data:`SWEEP_CONFIGS` configurations logged with ``log_backtest(..., returns=...)``, none
  of them really skilled: a small edge each (luck of the draw) plus noise that mean-reverts
  over the backtest, on top of one market they all trade (pairwise correlation about 0.5,
  as one model's configurations are: about 21 effective trials of 40), so the best of them
  looks good, the Deflated Sharpe says it could be
  luck among the trials, and the configuration best in any half of the periods is among
  the worst in the other half (PBO well above 0.5).
* **one sweep that is not** (tag ``run=sweep-4``, :data:`SKILLED_MODEL` on MSFT):
  :data:`SKILLED_CONFIGS` configurations whose skill really differs (annualised Sharpe 0 to
  2 along the grid) on top of the market they all trade (highly correlated trials, as a
  real sweep's are: few effective trials), so the configuration best in one half of the
  periods stays among the best in the other (PBO near 0).

Deterministic for a given ``random_state`` (numpy's seeded generator; only the timestamps
and the dates follow the clock) and quick: about 1,100 records.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from .ledger import Ledger

SAMPLE_TICKERS = ("AAPL", "MSFT", "GOOGL", "BRK.B", "BTC-USD", "^GSPC")
SAMPLE_MODELS = ("LSTM_v1", "XGBoost_v2", "Transformer_v1", "RandomForest_v3")
#: Evaluations per (ticker, model) by default: enough for ``decay`` with its defaults (30).
EVALUATIONS = 45
#: The one (ticker, model) pair whose skill really drops in its latest evaluations.
DECAYING = ("AAPL", "LSTM_v1")
#: How many of a decaying pair's latest evaluations come after the drop.
DECAY_RECENT = 20
#: The overfit sweep: its model, ticker, tag and size.
SWEEP_MODEL, SWEEP_TICKER, SWEEP_RUN, SWEEP_CONFIGS = "LightGBM_sweep", "AAPL", "sweep-3", 40
#: The sweep that is not overfit: its model, ticker, tag and size.
SKILLED_MODEL, SKILLED_TICKER, SKILLED_RUN, SKILLED_CONFIGS = "Ridge_sweep", "MSFT", "sweep-4", 24
#: Trading days per simulated backtest window (two years).
WINDOW = 504
#: Trading days of each sweep backtest: 512 splits evenly into 2, 4, 8 or 16 CSCV blocks.
SWEEP_PERIODS = 512
_DAILY_VOL = 0.012

#: Each model's params: fixed choices per (ticker, model), drawn from these.
_PARAMS: dict[str, dict[str, tuple[Any, ...]]] = {
    "LSTM_v1": {"epochs": (30, 50, 100), "lr": (0.001, 0.0005), "hidden": (64, 128)},
    "XGBoost_v2": {"max_depth": (3, 6, 9), "lr": (0.05, 0.1), "n_estimators": (200, 500)},
    "Transformer_v1": {"epochs": (20, 40), "lr": (0.0001, 0.0003), "layers": (2, 4)},
    "RandomForest_v3": {"max_depth": (6, 9, 12), "n_estimators": (300, 600)},
}


def _returns(rng: np.random.Generator, sharpe: float, n: int = WINDOW) -> np.ndarray:
    """Daily simple returns whose expected annualised Sharpe is ``sharpe``."""
    return rng.normal(sharpe * _DAILY_VOL / 252 ** 0.5, _DAILY_VOL, n)


def _evaluation(returns: np.ndarray) -> dict[str, Any]:
    from .stats.backtest import backtest_metrics

    core, custom = backtest_metrics(returns, 252)
    return {**{k: round(v, 6) for k, v in core.items() if v is not None},
            **{k: round(v, 6) for k, v in custom.items()}}


def sample_records(
    tickers: tuple[str, ...] = SAMPLE_TICKERS,
    models: tuple[str, ...] = SAMPLE_MODELS,
    evaluations: int = EVALUATIONS,
    *,
    random_state: int = 7,
    end: datetime | None = None,
    days: float = 90.0,
    labels: bool = True,
    returns: bool = False,
) -> list[dict[str, Any]]:
    """The nightly backtests: ``evaluations`` records per (ticker, model), spread evenly over
    the last ``days``, each with its computed backtest metrics as columns (custom metrics
    among them), its model's ``params`` and the tag ``run=nightly`` (unless ``labels`` is
    False: records as a ledger without params or tags holds them). ``returns=True`` adds
    each record's ``returns``: the daily series its metrics were computed from, a pandas
    Series dated by the :data:`WINDOW` business days ending on its evaluation's day (what
    ``log_many`` keeps, as ``log_backtest`` would)."""
    import numpy as np

    rng = np.random.default_rng(random_state)
    end = end or datetime.now(UTC)
    out: list[dict[str, Any]] = []
    calendar = _calendar(end, WINDOW + int(days) + 10) if returns else None
    for ticker in tickers:
        for model in models:
            skill = float(rng.normal(1.2, 0.35))
            grid = _PARAMS.get(model, {})
            params = {k: v[int(rng.integers(len(v)))] for k, v in grid.items()}
            if "max_depth" in grid:  # every depth on some ticker; XGBoost_v2 has 6 on AAPL
                depths = grid["max_depth"]
                params["max_depth"] = depths[(tickers.index(ticker) + (model == "XGBoost_v2"))
                                             % len(depths)]
            decays = (ticker, model) == DECAYING
            for i in range(evaluations):
                frac = i / max(evaluations - 1, 1)
                after_drop = decays and i >= evaluations - DECAY_RECENT
                series = _returns(rng, skill - (2.0 if after_drop else 0.0))
                record = _evaluation(series)
                if calendar is not None:
                    record["returns"] = _dated(series, end - timedelta(days=days * (1 - frac)), calendar)
                record.update(
                    model_name=model,
                    ticker=ticker,
                    timestamp=end - timedelta(days=days * (1 - frac)),
                    mse=round(abs(float(rng.normal(0.02, 0.006))) + 0.001, 5),
                    accuracy=round(min(max(0.52 + 0.03 * record.get("sharpe", 0.0)
                                           + float(rng.normal(0, 0.02)), 0.0), 1.0), 4),
                    notes=f"nightly walk-forward {i + 1} of {model} on {ticker}"
                          + (" (after the March regime change)" if after_drop else ""),
                    params=dict(params),
                    tags={"run": "nightly"},
                )
                if not labels:
                    del record["params"], record["tags"]
                out.append(record)
    return out


def sweep_returns(random_state: int = 7, configs: int = SWEEP_CONFIGS) -> list[np.ndarray]:
    """The overfit sweep's daily returns, one array of :data:`SWEEP_PERIODS` per
    configuration (module docstring): a small persistent edge (luck of the draw, annualised
    Sharpe around 0.3) plus noise that mean-reverts over the whole backtest (it sums to
    zero), so whatever made a configuration look good in one part of the periods it gives
    back in the rest; plus one market series shared by all (correlation about 0.5)."""
    import numpy as np

    rng = np.random.default_rng(random_state + 1)
    # The market every configuration trades (its own generator: the configurations' draws
    # stay those of a sweep without it). Added equally to all, it moves their Sharpes alike
    # and leaves which one wins a split to their own noise: the sweep stays overfit while
    # its trials are correlated, so the effective number of trials is below the count.
    market = np.random.default_rng(random_state + 3).normal(0, _DAILY_VOL, SWEEP_PERIODS)
    market -= market.mean()
    out = []
    for _ in range(configs):
        edge = float(rng.normal(0.3, 0.6)) * _DAILY_VOL / 252 ** 0.5
        noise = rng.normal(0, _DAILY_VOL, SWEEP_PERIODS)
        out.append(edge + noise - noise.mean() + market)
    return out


def skilled_sweep_returns(random_state: int = 7, configs: int = SKILLED_CONFIGS) -> list[np.ndarray]:
    """The sweep that is not overfit (module docstring): one market every configuration
    trades (90 % of the daily volatility), plus each configuration's own noise (35 %) and
    its skill, an annualised Sharpe rising from 0 to 2 along the grid."""
    import numpy as np

    rng = np.random.default_rng(random_state + 2)
    market = rng.normal(0, _DAILY_VOL, SWEEP_PERIODS)
    return [0.9 * market + rng.normal(skill * _DAILY_VOL / 252 ** 0.5, 0.35 * _DAILY_VOL, SWEEP_PERIODS)
            for skill in np.linspace(0.0, 2.0, configs)]


def _calendar(last: datetime, periods: int) -> Any:
    """The ``periods`` business days (UTC) ending on ``last``'s day."""
    import pandas as pd

    return pd.bdate_range(end=pd.Timestamp(last).normalize().tz_localize(None), periods=periods, tz="UTC")


def _dated(values: np.ndarray, last: datetime, calendar: Any = None) -> Any:
    """``values`` as a pandas Series on the business days ending on ``last``'s day (UTC),
    taken from ``calendar`` when given (one calendar for many series: no per-series range)."""
    import pandas as pd

    if calendar is None:
        return pd.Series(values, index=_calendar(last, len(values)))
    end = int(calendar.searchsorted(pd.Timestamp(last).normalize(), side="right"))
    return pd.Series(values, index=calendar[end - len(values): end])


def sweep_params(config: int) -> dict[str, Any]:
    """The ``config``-th configuration of the sweep: a grid over max_depth, lr and leaves."""
    depths, rates, leaves = (3, 4, 5, 6, 8), (0.01, 0.03, 0.1, 0.3), (15, 31)
    return {"max_depth": depths[config % 5], "lr": rates[(config // 5) % 4],
            "num_leaves": leaves[(config // 20) % 2]}


def add_sample_data(ledger: Ledger, evaluations: int = EVALUATIONS, *, random_state: int = 7) -> int:
    """Log the sample research history into ``ledger`` (nightly backtests with their returns
    in one transaction, then each sweep's backtests with their returns); returns the number
    of records added."""
    from .stats.backtest import BACKTEST_DIRECTIONS

    known = ledger.metric_directions()
    for name, higher in BACKTEST_DIRECTIONS.items():
        if known.get(name) is not higher:
            ledger.register_metric(name, higher)
    added = ledger.log_many(sample_records(evaluations=evaluations, random_state=random_state, returns=True))
    start = datetime.now(UTC) - timedelta(days=3)
    for i, values in enumerate(sweep_returns(random_state)):
        ledger.log_backtest(
            SWEEP_MODEL, SWEEP_TICKER, returns=_dated(values, start), params=sweep_params(i),
            tags={"run": SWEEP_RUN}, timestamp=start + timedelta(minutes=3 * i),
            notes=f"sweep-3 config {i + 1}/{SWEEP_CONFIGS}: grid search, 2-year backtest",
        )
        added += 1
    for i, values in enumerate(skilled_sweep_returns(random_state)):
        ledger.log_backtest(
            SKILLED_MODEL, SKILLED_TICKER, returns=_dated(values, start),
            params={"alpha": round(10 ** (-i / 8), 4)},
            tags={"run": SKILLED_RUN}, timestamp=start + timedelta(hours=4, minutes=3 * i),
            notes=f"sweep-4 config {i + 1}/{SKILLED_CONFIGS}: regularisation path, 2-year backtest",
        )
        added += 1
    return added
