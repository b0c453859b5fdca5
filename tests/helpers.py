"""Independent recomputations the tests compare the ledger against."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

CORE_METRICS = ("sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy")
DIRECTIONS = {"sharpe": True, "mse": False, "drawdown": True, "total_return": True,
              "win_rate": True, "accuracy": True}


def recompute_best(history: pd.DataFrame, directions: dict[str, bool]) -> dict[str, Any]:
    """Best per ticker per metric from a history frame (chronological): strictly better wins,
    ties keep the earlier record — written without the library's code."""
    out: dict[str, Any] = {}
    for ticker in sorted(set(history["ticker"])) if len(history) else []:
        rows = history[history["ticker"] == ticker]
        entry = {}
        for metric, higher in directions.items():
            best = None
            if metric in rows.columns:
                for _, r in rows.iterrows():
                    v = r[metric]
                    if v is None or (isinstance(v, float) and math.isnan(v)):
                        continue
                    if best is None or (v > best[1] if higher else v < best[1]):
                        best = (r["model_name"], float(v), r["timestamp"].isoformat())
            entry[f"best_{metric}"] = (
                {"model": best[0], "value": best[1], "timestamp": best[2]}
                if best else {"model": None, "value": None, "timestamp": None}
            )
        out[ticker] = entry
    return out


def normalise_best(best: dict[str, Any]) -> dict[str, Any]:
    """Timestamps as pandas-parsed instants, so string formatting differences don't matter."""
    out: dict[str, Any] = {}
    for t, entry in best.items():
        out[t] = {
            k: {**v, "timestamp": pd.Timestamp(v["timestamp"]) if v["timestamp"] else None}
            for k, v in entry.items()
        }
    return out


def mirror_records(directory: Path) -> list[dict[str, Any]]:
    with open(directory / "model_performance.json", encoding="utf-8") as f:
        return json.load(f)


def csv_records(directory: Path) -> list[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)  # notes may be a megabyte
    with open(directory / "model_performance.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))
