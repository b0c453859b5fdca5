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
* **one sweep that is really overfit** (tag ``run=sweep-3``, :data:`SWEEP_MODEL` on AAPL):
  :data:`SWEEP_CONFIGS` configurations logged with ``log_backtest(..., returns=...)``, none
  of them really skilled: a small edge each (luck of the draw) plus noise that mean-reverts
  over the backtest, so the best of them looks good, the Deflated Sharpe says it could be
  luck among the trials, and the configuration best in any half of the periods is among
  the worst in the other half (PBO well above 0.5).

Deterministic for a given ``random_state`` (numpy's seeded generator; only the timestamps
follow the clock) and quick: about 1,100 records.
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
) -> list[dict[str, Any]]:
    """The nightly backtests: ``evaluations`` records per (ticker, model), spread evenly over
    the last ``days``, each with its computed backtest metrics as columns (custom metrics
    among them), its model's ``params`` and the tag ``run=nightly`` (unless ``labels`` is
    False: records as a ledger without params or tags holds them)."""
    import numpy as np

    rng = np.random.default_rng(random_state)
    end = end or datetime.now(UTC)
    out: list[dict[str, Any]] = []
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
                record = _evaluation(_returns(rng, skill - (2.0 if after_drop else 0.0)))
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
    back in the rest."""
    import numpy as np

    rng = np.random.default_rng(random_state + 1)
    out = []
    for _ in range(configs):
        edge = float(rng.normal(0.3, 0.6)) * _DAILY_VOL / 252 ** 0.5
        noise = rng.normal(0, _DAILY_VOL, SWEEP_PERIODS)
        out.append(edge + noise - noise.mean())
    return out


def sweep_params(config: int) -> dict[str, Any]:
    """The ``config``-th configuration of the sweep: a grid over max_depth, lr and leaves."""
    depths, rates, leaves = (3, 4, 5, 6, 8), (0.01, 0.03, 0.1, 0.3), (15, 31)
    return {"max_depth": depths[config % 5], "lr": rates[(config // 5) % 4],
            "num_leaves": leaves[(config // 20) % 2]}


def add_sample_data(ledger: Ledger, evaluations: int = EVALUATIONS, *, random_state: int = 7) -> int:
    """Log the sample research history into ``ledger`` (nightly backtests in one
    transaction, then the sweep's backtests with their returns); returns the number of
    records added."""
    from .stats.backtest import BACKTEST_DIRECTIONS

    known = ledger.metric_directions()
    for name, higher in BACKTEST_DIRECTIONS.items():
        if known.get(name) is not higher:
            ledger.register_metric(name, higher)
    added = ledger.log_many(sample_records(evaluations=evaluations, random_state=random_state))
    start = datetime.now(UTC) - timedelta(days=3)
    for i, returns in enumerate(sweep_returns(random_state)):
        ledger.log_backtest(
            SWEEP_MODEL, SWEEP_TICKER, returns=returns, params=sweep_params(i),
            tags={"run": SWEEP_RUN}, timestamp=start + timedelta(minutes=3 * i),
            notes=f"sweep-3 config {i + 1}/{SWEEP_CONFIGS}: grid search, 2-year backtest",
        )
        added += 1
    return added
