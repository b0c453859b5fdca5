"""Plausible sample evaluations, for first runs, demos and the dashboard's "add sample data".

Each (ticker, model) pair gets a persistent skill level plus noise, and some models decay
over time, so the sample shows what the ledger is for: a clear best model per ticker, and a
model that is getting worse.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ledger import Ledger

SAMPLE_TICKERS = ("AAPL", "MSFT", "GOOGL", "BRK.B", "BTC-USD", "^GSPC")
SAMPLE_MODELS = ("LSTM_v1", "XGBoost_v2", "Transformer_v1", "RandomForest_v3")


def sample_records(
    tickers: tuple[str, ...] = SAMPLE_TICKERS,
    models: tuple[str, ...] = SAMPLE_MODELS,
    evaluations: int = 20,
    *,
    random_state: int = 7,
    end: datetime | None = None,
    days: float = 90.0,
) -> list[dict[str, Any]]:
    """``evaluations`` records per (ticker, model), spread evenly over the last ``days``."""
    rng = random.Random(random_state)
    end = end or datetime.now(UTC)
    out: list[dict[str, Any]] = []
    for ticker in tickers:
        for model in models:
            skill = rng.gauss(1.0, 0.5)
            decay = rng.choice([0.0, 0.0, 0.6])
            for i in range(evaluations):
                frac = i / max(evaluations - 1, 1)
                s = skill - decay * frac + rng.gauss(0, 0.25)
                out.append(
                    {
                        "model_name": model,
                        "ticker": ticker,
                        "timestamp": end - timedelta(days=days * (1 - frac)),
                        "sharpe": round(s, 4),
                        "mse": round(abs(rng.gauss(0.02, 0.008)) + 0.001, 5),
                        "drawdown": round(-abs(rng.gauss(0.12, 0.05)) / max(s, 0.5), 4),
                        "total_return": round(0.08 * s + rng.gauss(0, 0.05), 4),
                        "win_rate": round(min(max(0.5 + 0.05 * s + rng.gauss(0, 0.03), 0), 1), 4),
                        "accuracy": round(min(max(0.52 + 0.04 * s + rng.gauss(0, 0.03), 0), 1), 4),
                        "notes": f"sample evaluation {i + 1} of {model} on {ticker}",
                    }
                )
    return out


def add_sample_data(ledger: Ledger, evaluations: int = 20, *, random_state: int = 7) -> int:
    """Log a sample set into ``ledger``; returns the number of records added."""
    return ledger.log_many(
        sample_records(evaluations=evaluations, random_state=random_state)
    )
