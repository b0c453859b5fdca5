# BASELINE — re-creation of the seed specification's design for comparison; not perfledger.
#
# This module re-creates, for benchmarking only, the storage design the seed specification
# (/work/shared/seed/model-performance-logging.md) describes: every log reads the whole
# model_performance.json, appends, rewrites it with indent=2; appends one CSV row through
# pandas; reads and rewrites best_models.json. History reads the whole CSV. No locking,
# naive local timestamps. Its costs and its lost-update races are the point: do not "fix" it.
"""BASELINE — the seed specification's file-based design, re-created for comparison.

Functions mirror the seed API but take an explicit ``directory`` so benchmarks can run
many isolated stores side by side.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

JSON_NAME = "model_performance.json"
CSV_NAME = "model_performance.csv"
BEST_NAME = "best_models.json"
METRICS = ("sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy")
#: The seed's directions: lower MSE is better, everything else higher (drawdown is <= 0).
HIGHER_IS_BETTER = {m: m != "mse" for m in METRICS}


def ensure_log_directory(directory: str | os.PathLike[str]) -> Path:
    """Create the log directory, as the seed does before every write."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_model_performance(
    directory: str | os.PathLike[str],
    model_name: str,
    ticker: str,
    sharpe: float | None = None,
    mse: float | None = None,
    drawdown: float | None = None,
    total_return: float | None = None,
    win_rate: float | None = None,
    accuracy: float | None = None,
    notes: str = "",
    timestamp: str | None = None,
) -> dict[str, Any]:
    """Log one record the seed's way: full JSON read-modify-write, a pandas CSV append,
    and a best_models.json read-modify-write. ``timestamp`` exists only so tests and
    pre-filled benchmark stores can backdate; the seed always uses ``datetime.now()``."""
    path = ensure_log_directory(directory)
    record: dict[str, Any] = {
        "timestamp": timestamp or datetime.now().isoformat(),
        "ticker": ticker,
        "model_name": model_name,
        "sharpe": sharpe,
        "mse": mse,
        "drawdown": drawdown,
        "total_return": total_return,
        "win_rate": win_rate,
        "accuracy": accuracy,
        "notes": notes,
    }

    json_path = path / JSON_NAME
    data: list[dict[str, Any]] = []
    if json_path.exists():
        with open(json_path) as f:
            data = json.load(f)
    data.append(record)
    with open(json_path, "w") as f:
        json.dump(data, f, indent=2)

    csv_path = path / CSV_NAME
    exists = csv_path.exists()
    pd.DataFrame([record]).to_csv(csv_path, mode="a", header=not exists, index=False)

    _update_best_models(path, record)
    return record


def _update_best_models(path: Path, record: dict[str, Any]) -> None:
    best_path = path / BEST_NAME
    best: dict[str, Any] = {}
    if best_path.exists():
        with open(best_path) as f:
            best = json.load(f)
    entry = best.setdefault(record["ticker"], {})
    for metric in METRICS:
        value = record[metric]
        if value is None:
            continue
        key = f"best_{metric}"
        current = entry.get(key)
        better = (
            current is None
            or current.get("value") is None
            or (value > current["value"] if HIGHER_IS_BETTER[metric] else value < current["value"])
        )
        if better:
            entry[key] = {"model": record["model_name"], "value": value, "timestamp": record["timestamp"]}
    with open(best_path, "w") as f:
        json.dump(best, f, indent=2)


def get_model_performance_history(
    directory: str | os.PathLike[str],
    ticker: str | None = None,
    model_name: str | None = None,
    days_back: int | None = None,
) -> pd.DataFrame:
    """The seed's query path: read the whole CSV, parse timestamps, filter, sort."""
    csv_path = Path(directory) / CSV_NAME
    if not csv_path.exists():
        return pd.DataFrame()
    df = pd.read_csv(csv_path)
    if df.empty:
        return df
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    if ticker:
        df = df[df["ticker"] == ticker]
    if model_name:
        df = df[df["model_name"] == model_name]
    if days_back:
        df = df[df["timestamp"] >= datetime.now() - timedelta(days=days_back)]
    return df.sort_values("timestamp")


def get_best_models(directory: str | os.PathLike[str], ticker: str | None = None) -> dict[str, Any]:
    """Read best_models.json (one ticker's entry, or all)."""
    best_path = Path(directory) / BEST_NAME
    if not best_path.exists():
        return {}
    with open(best_path) as f:
        best = json.load(f)
    return best.get(ticker, {}) if ticker else best


def get_available_tickers(directory: str | os.PathLike[str]) -> list[str]:
    """Distinct tickers, from the full CSV as the seed does."""
    df = get_model_performance_history(directory)
    return sorted(df["ticker"].unique().tolist()) if not df.empty else []


def clear_model_performance_log(directory: str | os.PathLike[str]) -> None:
    """Delete the three files."""
    for name in (JSON_NAME, CSV_NAME, BEST_NAME):
        (Path(directory) / name).unlink(missing_ok=True)


def prefill(directory: str | os.PathLike[str], records: list[dict[str, Any]]) -> None:
    """Write a store holding ``records`` in one go, in exactly the files and formats the
    per-log path produces (so benchmarks can start from N records without N slow logs)."""
    path = ensure_log_directory(directory)
    with open(path / JSON_NAME, "w") as f:
        json.dump(records, f, indent=2)
    pd.DataFrame(records).to_csv(path / CSV_NAME, index=False)
    best: dict[str, Any] = {}
    for rec in records:
        entry = best.setdefault(rec["ticker"], {})
        for metric in METRICS:
            value = rec[metric]
            if value is None:
                continue
            key = f"best_{metric}"
            cur = entry.get(key)
            if cur is None or (value > cur["value"] if HIGHER_IS_BETTER[metric] else value < cur["value"]):
                entry[key] = {"model": rec["model_name"], "value": value, "timestamp": rec["timestamp"]}
    with open(path / BEST_NAME, "w") as f:
        json.dump(best, f, indent=2)
