"""The seed's integration examples, runnable: train-and-log, select the best model, monitor.

    python examples/model_performance_logging_example.py

Logs into ./memory/logs (or $PERFLEDGER_URL). The "training" is a toy: a noisy signal
backtested on synthetic returns, so the example runs anywhere in a second.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

# The seed's layout: `memory/` lives at the project root, next to this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memory.model_log import (
    get_available_tickers,
    get_best_models,
    get_model_performance_history,
    log_model_performance,
)


def backtest(skill: float, periods: int, rng: random.Random) -> dict[str, float]:
    """A toy model: predictions correlated with next-period returns by ``skill``."""
    actual = [rng.gauss(0.0005, 0.01) for _ in range(periods)]
    pred = [skill * a + (1 - skill) * rng.gauss(0, 0.01) for a in actual]
    strat = [a if p > 0 else -a for p, a in zip(pred, actual, strict=True)]
    mean = sum(strat) / periods
    std = (sum((r - mean) ** 2 for r in strat) / (periods - 1)) ** 0.5
    wealth, peak, dd = 1.0, 1.0, 0.0
    for r in strat:
        wealth *= 1 + r
        peak = max(peak, wealth)
        dd = min(dd, wealth / peak - 1)
    nonzero = [r for r in strat if r != 0]
    return {
        "sharpe": mean / std * 252**0.5,
        "mse": sum((p - a) ** 2 for p, a in zip(pred, actual, strict=True)) / periods,
        "drawdown": dd,
        "total_return": wealth - 1,
        "win_rate": sum(r > 0 for r in nonzero) / len(nonzero),
        "accuracy": sum((p > 0) == (a > 0) for p, a in zip(pred, actual, strict=True)) / periods,
    }


def train_and_log_model(model_name: str, ticker: str, skill: float, rng: random.Random) -> None:
    """Example 1: evaluate a model and log its performance."""
    periods = 252
    metrics = backtest(skill, periods, rng)
    log_model_performance(
        model_name=model_name, ticker=ticker, notes=f"Trained on {periods} samples", **metrics
    )


def select_best_model(ticker: str, metric: str = "sharpe") -> str | None:
    """Example 2: the best model for a ticker by one metric."""
    best_models = get_best_models(ticker)
    entry = best_models.get(f"best_{metric}") if best_models else None
    return entry["model"] if entry and entry["model"] else None


def monitor_model_performance(model_name: str, ticker: str, threshold_sharpe: float = 1.0) -> bool:
    """Example 3: alert when the latest Sharpe of the last 30 days is below a threshold."""
    history = get_model_performance_history(ticker=ticker, model_name=model_name, days_back=30)
    if history.empty:
        print(f"No recent performance data for {model_name}")
        return False
    recent_sharpe = history["sharpe"].iloc[-1]
    if recent_sharpe < threshold_sharpe:
        print(f"  warning: {model_name} on {ticker}: Sharpe {recent_sharpe:.3f} < {threshold_sharpe}")
        return False
    print(f"  ok: {model_name} on {ticker}: Sharpe {recent_sharpe:.3f}")
    return True


def main() -> None:
    rng = random.Random(42)
    models = {"LSTM_v1": 0.04, "XGBoost_v2": 0.07, "Transformer_v1": 0.02}
    for ticker in ("AAPL", "GOOGL", "MSFT"):
        for model, skill in models.items():
            train_and_log_model(model, ticker, skill, rng)
    print("Logged 9 evaluations.\n")
    for ticker in get_available_tickers():
        best = select_best_model(ticker)
        print(f"{ticker}: best model by Sharpe is {best}")
        monitor_model_performance(best, ticker) if best else None
    print()
    for ticker, entries in get_best_models().items():
        print(f"Best models for {ticker}:")
        for metric, data in entries.items():
            if data.get("model"):
                print(f"  {metric}: {data['model']} ({data['value']:.4g})")


if __name__ == "__main__":
    main()
